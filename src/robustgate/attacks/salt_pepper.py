"""Salt-and-pepper noise: a share ``amount`` of pixel positions set to black or white (all channels).

Written here: torchattacks has no salt-and-pepper attack, and foolbox's (which searches for the
smallest amount that fools the model) does not run on current torch. This is the fixed-amount
form the study uses; a pixel is pepper or salt with equal odds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustgate.attacks.base import AttackKind, AttackSettings, Perturb, attack_kinds

if TYPE_CHECKING:
    import torch


class SaltAndPepper(AttackKind):
    needs_gradients = False
    strength = "amount"

    def build(self, model: torch.nn.Module, settings: AttackSettings, seed: int) -> Perturb:
        amount = settings.strength

        def perturb(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            import torch  # torch only when attacking: validating a spec must not import it

            n, _, h, w = images.shape
            hit = torch.rand(n, 1, h, w, device=images.device) < amount
            salt = torch.rand(n, 1, h, w, device=images.device) < 0.5
            return torch.where(hit, salt.to(images.dtype), images)

        return perturb


attack_kinds.register("salt_pepper")(SaltAndPepper())

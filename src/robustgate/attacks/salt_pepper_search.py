"""Salt-and-pepper noise searched for its smallest fooling amount, as foolbox's attack does.

Per image, ``steps`` amounts evenly spaced up to ``amount`` are tried in order, on nested noise
(one uniform draw per pixel; a pixel is hit at amount a when its draw is below a), and the first
noisy image the model gets wrong is kept. An image no amount fools gets the full amount. So the
attack breaks an image iff some amount up to ``amount`` does, which a single draw at ``amount``
can miss. Written here for the same reason as ``salt_pepper``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustgate.attacks.base import AttackKind, AttackSettings, Perturb, attack_kinds

if TYPE_CHECKING:
    import torch


class SaltAndPepperSearch(AttackKind):
    needs_gradients = False
    strength = "amount"
    search_steps = 20

    def build(self, model: torch.nn.Module, settings: AttackSettings, seed: int) -> Perturb:
        steps = settings.steps or self.search_steps

        def perturb(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            import torch  # torch only when attacking: validating a spec must not import it

            n, _, h, w = images.shape
            draw = torch.rand(n, 1, h, w, device=images.device)
            salt = (torch.rand(n, 1, h, w, device=images.device) < 0.5).to(images.dtype)
            result, standing = images.clone(), torch.ones(n, dtype=torch.bool, device=images.device)
            noisy = images
            for step in range(1, steps + 1):
                noisy = torch.where(draw < settings.strength * step / steps, salt, images)
                with torch.no_grad():
                    fooled = model(noisy).argmax(1) != labels
                newly = standing & fooled
                result[newly] = noisy[newly]
                standing &= ~fooled
                if not bool(standing.any()):
                    break
            result[standing] = noisy[standing]
            return result

        return perturb


attack_kinds.register("salt_pepper_search")(SaltAndPepperSearch())

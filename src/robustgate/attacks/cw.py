"""Carlini-Wagner L2 (2017) through torchattacks, with its result projected onto the eps ball.

CW minimises the perturbation instead of bounding it; a contract asks for robustness at a
given eps, so a perturbation larger than eps is scaled back onto the L2 ball (and may then no
longer fool the model, which is the point).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustgate.attacks.base import AttackKind, AttackSettings, Perturb, attack_kinds, torchattack

if TYPE_CHECKING:
    import torch


class CarliniWagner(AttackKind):
    norms = ("L2",)
    default_steps = 50
    attacks_every_image = False  # it keeps the smallest perturbation that fools: ~none where the model is wrong already

    def build(self, model: torch.nn.Module, settings: AttackSettings, seed: int) -> Perturb:
        import torchattacks  # torchattacks (and torch) only when attacking: validating a spec must not import them

        lr = settings.step_size if settings.step_size is not None else 0.01
        attack = torchattack(lambda: torchattacks.CW(model, c=1, kappa=0, steps=settings.steps or self.default_steps, lr=lr))

        def perturb(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            delta = attack(images, labels) - images
            norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
            scale = (settings.strength / norms).clamp(max=1.0).view(-1, *[1] * (images.dim() - 1))
            return (images + delta * scale).clamp(0, 1)

        return perturb


attack_kinds.register("cw")(CarliniWagner())

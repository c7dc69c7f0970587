"""FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps, through torchattacks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustgate.attacks.base import AttackKind, AttackSettings, Perturb, attack_kinds, torchattack

if TYPE_CHECKING:  # torch only when attacking: validating a spec must not import it
    import torch


class FGSM(AttackKind):
    def build(self, model: torch.nn.Module, settings: AttackSettings, seed: int) -> Perturb:
        import torchattacks  # torchattacks (and torch) only when attacking: validating a spec must not import them

        return torchattack(lambda: torchattacks.FGSM(model, eps=settings.strength))


attack_kinds.register("fgsm")(FGSM())

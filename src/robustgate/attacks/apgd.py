"""APGD-CE (Croce & Hein 2020): step-size-free PGD with momentum, Linf or L2, through torchattacks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustgate.attacks.base import AttackKind, AttackSettings, Perturb, attack_kinds, torchattack

if TYPE_CHECKING:  # torch only when attacking: validating a spec must not import it
    import torch


class APGD(AttackKind):
    norms = ("Linf", "L2")
    default_steps = 10
    attacks_every_image = False  # it perturbs only the images the attacked model still gets right

    def build(self, model: torch.nn.Module, settings: AttackSettings, seed: int) -> Perturb:
        import torchattacks  # torchattacks (and torch) only when attacking: validating a spec must not import them

        return torchattack(
            lambda: torchattacks.APGD(
                model, norm=settings.norm, eps=settings.strength, steps=settings.steps or self.default_steps,
                n_restarts=1, seed=seed, loss="ce",
            )
        )


attack_kinds.register("apgd")(APGD())

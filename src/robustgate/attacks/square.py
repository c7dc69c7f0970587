"""Square attack (Andriushchenko et al. 2020): random square updates, forward passes only, through
torchattacks. It needs no gradients, so it attacks int8 models as they are."""

from __future__ import annotations

import torchattacks

from robustgate.attacks.base import AttackKind, AttackSettings, Perturb, attack_kinds, torchattack


class Square(AttackKind):
    needs_gradients = False
    norms = ("Linf", "L2")
    default_steps = 200  # queries per image; the paper's 5000 is hours on two CPU cores

    def build(self, model, settings: AttackSettings, seed: int) -> Perturb:
        return torchattack(
            lambda: torchattacks.Square(
                model, norm=settings.norm, eps=settings.strength, n_queries=settings.steps or self.default_steps,
                n_restarts=settings.restarts, seed=seed, loss="margin",
            )
        )


attack_kinds.register("square")(Square())

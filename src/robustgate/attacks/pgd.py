"""PGD (Madry et al. 2018) with a random start, Linf or L2, through torchattacks.

Default step size 2.5·eps/steps (Madry et al.'s rule), so the iterates can cross the ball.
Each batch also records, per image, the first iterate the attacked model misclassified
(``first_fooled``): the masking diagnostics read convergence off it instead of attacking again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustgate.attacks.base import AttackKind, AttackSettings, Perturb, attack_kinds, torchattack

if TYPE_CHECKING:  # torch only when attacking: validating a spec must not import it
    import torch


class PGD(AttackKind):
    norms = ("Linf", "L2")
    default_steps = 10

    def build(self, model: torch.nn.Module, settings: AttackSettings, seed: int) -> Perturb:
        # torchattacks' classes (and torch) only when attacking: validating a spec must not import them
        from robustgate.attacks.pgd_traced import TracedPGD, TracedPGDL2

        steps = settings.steps or self.default_steps
        alpha = settings.step_size if settings.step_size is not None else 2.5 * settings.strength / steps
        kind = TracedPGD if settings.norm == "Linf" else TracedPGDL2
        return torchattack(lambda: kind(model, eps=settings.strength, alpha=alpha, steps=steps, random_start=True))


attack_kinds.register("pgd")(PGD())

"""PGD (Madry et al. 2018) with a random start, Linf or L2, through torchattacks.

Default step size 2.5·eps/steps (Madry et al.'s rule), so the iterates can cross the ball.
Restarts keep, per image, the first perturbation that fools the model.
"""

from __future__ import annotations

import torch
import torchattacks

from robustgate.attacks.base import AttackKind, AttackSettings, Perturb, attack_kinds, torchattack


class PGD(AttackKind):
    norms = ("Linf", "L2")
    default_steps = 10

    def build(self, model, settings: AttackSettings, seed: int) -> Perturb:
        steps = settings.steps or self.default_steps
        alpha = settings.step_size if settings.step_size is not None else 2.5 * settings.strength / steps
        kind = torchattacks.PGD if settings.norm == "Linf" else torchattacks.PGDL2
        attack = torchattack(lambda: kind(model, eps=settings.strength, alpha=alpha, steps=steps, random_start=True))
        return with_restarts(attack, model, settings.restarts)


def with_restarts(attack: Perturb, model, restarts: int) -> Perturb:
    if restarts == 1:
        return attack

    def perturb(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        best = attack(images, labels)
        for _ in range(restarts - 1):
            with torch.no_grad():
                fooled = model(best).argmax(1) != labels
            if bool(fooled.all()):
                break
            again = attack(images, labels)
            best = torch.where(fooled.view(-1, *[1] * (images.dim() - 1)), best, again)
        return best

    return perturb


attack_kinds.register("pgd")(PGD())

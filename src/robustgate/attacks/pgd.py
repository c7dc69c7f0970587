"""PGD (Madry et al. 2018) with a random start, Linf or L2, through torchattacks.

Default step size 2.5·eps/steps (Madry et al.'s rule), so the iterates can cross the ball.
Each batch also records, per image, the first iterate the attacked model misclassified
(``first_fooled``): the masking diagnostics read convergence off it instead of attacking again.
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
        kind = TracedPGD if settings.norm == "Linf" else TracedPGDL2
        return torchattack(lambda: kind(model, eps=settings.strength, alpha=alpha, steps=steps, random_start=True))


class FirstFooled:
    """Mixin for a torchattacks iterative attack: after each call, ``first_fooled`` holds per image the
    index of the first iterate (0: the random start) the attacked model got wrong, or -1 if none did.
    The attack computes those logits anyway (``get_logits`` once per step), so recording is free."""

    first_fooled: torch.Tensor | None = None

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._predicted: list[torch.Tensor] = []
        adversarial = super().forward(images, labels)  # type: ignore[misc]
        wrong = torch.stack(self._predicted) != labels.to(self._predicted[0].device)  # iterates x images
        first = wrong.to(torch.int8).argmax(0).to(torch.int16)
        self.first_fooled = torch.where(wrong.any(0), first, -1).cpu()
        return adversarial

    def get_logits(self, inputs: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        logits = super().get_logits(inputs, *args, **kwargs)  # type: ignore[misc]
        self._predicted.append(logits.detach().argmax(1))
        return logits


class TracedPGD(FirstFooled, torchattacks.PGD):
    pass


class TracedPGDL2(FirstFooled, torchattacks.PGDL2):
    pass


attack_kinds.register("pgd")(PGD())

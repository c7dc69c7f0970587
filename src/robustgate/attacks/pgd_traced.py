"""The ``pgd`` kind's attacks: torchattacks' PGD and PGDL2, recording per image the first iterate that fooled
the attacked model (``first_fooled``). Apart from :mod:`robustgate.attacks.pgd`, which registers the kind when
specs are read, because subclassing torchattacks' classes imports torch.
"""

from __future__ import annotations

from typing import Any

import torch
import torchattacks


class FirstFooled:
    """Mixin for a torchattacks iterative attack: after each call, ``first_fooled`` holds per image the
    index of the first iterate (0: the random start) the attacked model got wrong, or -1 if none did.
    The attack computes those logits anyway (``get_logits`` once per step), so recording is free."""

    first_fooled: torch.Tensor | None = None

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._predicted: list[torch.Tensor] = []
        adversarial = super().forward(images, labels)  # type: ignore[misc]  # a mixin: the attack class after it has forward
        wrong = torch.stack(self._predicted) != labels.to(self._predicted[0].device)  # iterates x images
        first = wrong.to(torch.int8).argmax(0).to(torch.int16)
        self.first_fooled = torch.where(wrong.any(0), first, -1).cpu()
        return adversarial

    def get_logits(self, inputs: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        logits = super().get_logits(inputs, *args, **kwargs)  # type: ignore[misc]  # (likewise get_logits)
        self._predicted.append(logits.detach().argmax(1))
        return logits


class TracedPGD(FirstFooled, torchattacks.PGD):
    pass


class TracedPGDL2(FirstFooled, torchattacks.PGDL2):
    pass


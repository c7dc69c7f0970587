"""Square attack (Andriushchenko et al. 2020): random square updates, forward passes only, through
torchattacks. It needs no gradients, so it attacks int8 models as they are."""

from __future__ import annotations

import torch
import torchattacks

from robustgate.attacks.base import AttackKind, AttackSettings, Perturb, attack_kinds, torchattack
from robustgate.errors import RobustgateError


class Square(AttackKind):
    needs_gradients = False
    norms = ("Linf", "L2")
    default_steps = 200  # queries per image; the paper's 5000 is hours on two CPU cores

    def build(self, model, settings: AttackSettings, seed: int) -> Perturb:
        attack = torchattack(
            lambda: torchattacks.Square(
                model, norm=settings.norm, eps=settings.strength, n_queries=settings.steps or self.default_steps,
                n_restarts=settings.restarts, seed=seed, loss="margin",
            )
        )

        def perturb(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            if images.shape[-1] != images.shape[-2]:  # its square windows are sized from the height alone
                raise RobustgateError(
                    f"the square attack needs square images, not {images.shape[-2]}x{images.shape[-1]}",
                    hint="use another attack kind, or a square model input size",
                )
            return attack(images, labels)

        return perturb


attack_kinds.register("square")(Square())

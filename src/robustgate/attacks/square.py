"""Square attack (Andriushchenko et al. 2020): random square updates, forward passes only, through
torchattacks. It needs no gradients, so it attacks int8 models as they are. It runs
:class:`robustgate.attacks.square_rectangular.RectangularSquare`: torchattacks' attack, made correct on
images that are not square.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustgate.attacks.base import AttackKind, AttackSettings, Perturb, attack_kinds, torchattack

if TYPE_CHECKING:  # torch only when attacking: validating a spec must not import it
    import torch


class Square(AttackKind):
    needs_gradients = False
    attacks_every_image = False  # it leaves images the model already gets wrong as they are
    norms = ("Linf", "L2")
    default_steps = 200  # queries per image; the paper's 5000 is hours on two CPU cores

    def build(self, model: torch.nn.Module, settings: AttackSettings, seed: int) -> Perturb:
        # torchattacks' classes (and torch) only when attacking: validating a spec must not import them
        from robustgate.attacks.square_rectangular import RectangularSquare

        return torchattack(
            lambda: RectangularSquare(
                model, norm=settings.norm, eps=settings.strength, n_queries=settings.steps or self.default_steps,
                n_restarts=1, seed=seed, loss="margin",
            )
        )


attack_kinds.register("square")(Square())

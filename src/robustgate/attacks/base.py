"""What an attack kind is: how it perturbs a batch, and whether it needs the model's gradients."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from robustgate.registry import Registry

if TYPE_CHECKING:  # kinds are looked up when specs are read; torch is imported when they attack
    import torch

Perturb = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]
"""(images in [0, 1], labels) -> perturbed images in [0, 1], same shape."""


@dataclass(frozen=True)
class AttackSettings:
    """One point of an attack contract: the strength and the budget, resolved from the spec."""

    strength: float  # eps (Linf or L2 radius), or the noise level for noise kinds
    norm: str  # "Linf" or "L2"
    steps: int | None  # iterations (queries for query-based attacks); None: the kind's default
    step_size: float | None  # None: the kind's default for the strength and steps
    restarts: int


class AttackKind:
    """One registered attack. ``build`` returns a function that perturbs one batch once (restarts are
    the runner's: it keeps, per image, the first restart that fools the scored model); it is called
    under a seeded RNG, so random starts and noise are reproducible."""

    needs_gradients: ClassVar[bool] = True  # False: forward passes only (runs on int8 models as they are)
    # False: images the attacked model already gets wrong come back unperturbed (APGD, CW, Square do so);
    # when another model is scored, the runner attacks those images with PGD instead.
    attacks_every_image: ClassVar[bool] = True
    norms: ClassVar[tuple[str, ...]] = ("Linf",)
    strength: ClassVar[str] = "eps"  # the contract key that sets the strength ("amount" for salt_pepper)
    default_steps: ClassVar[int | None] = None

    def build(self, model: torch.nn.Module, settings: AttackSettings, seed: int) -> Perturb:
        raise NotImplementedError


def torchattack(make: Callable[[], Any]) -> Any:
    """A torchattacks attack, built quietly (it prints when a model has no parameters, as int8
    models have none) and on the CPU when it could not read a device off the model."""
    import torch

    with contextlib.redirect_stdout(io.StringIO()):
        attack = make()
    if attack.device is None:
        attack.set_device(torch.device("cpu"))
    return attack


attack_kinds: Registry[AttackKind] = Registry("attack", base=AttackKind)

"""Robust accuracy that means something for every variant, int8 included.

Differentiable models (and attacks that need no gradients) are attacked directly. An int8 model
has no autograd: a white-box attack on it crashes, and attacking the fp32 model instead says
nothing about the int8 one. For those, an image counts as robust only if it survives every
attack in the protocol, each scored on the real int8 model:

- twin: the white-box attack run on a differentiable fake-quant twin of the int8 model
  (straight-through gradients; its clean agreement with the int8 model is reported);
- transfer: the white-box attack run on the fp32 parent (the variant before quantization);
- gradient-free: the Square attack (forward passes only) run on the int8 model itself.

A model that has autograd but whose input gradients are None, NaN or mostly zero (a rounding
or other masking layer) is attacked directly and also by the gradient-free attack, and by
transfer when it has a differentiable parent.

Which attack broke each image first is recorded, in the order clean, white-box, twin,
transfer, gradient-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robustgate.attacks.base import AttackSettings, attack_kinds
from robustgate.attacks.gradients import gradient_problem
from robustgate.attacks.run import attacked_correct, predictions
from robustgate.compressors.int8.engine import Int8Net

METHODS = ("robust", "clean", "white-box", "twin", "transfer", "gradient-free")
"""Codes of ``RobustResult.found_by``: index 0 means the image withstood everything."""


@dataclass(frozen=True)
class RobustResult:
    correct: torch.Tensor  # bool per image: right on the clean image and after every attack
    found_by: torch.Tensor  # uint8 per image: index into METHODS of the first attack that broke it
    twin_agreement: float | None = None  # share of clean images where the twin predicts as the int8 model

    def counts(self) -> dict[str, int]:
        return {method: int((self.found_by == code).sum()) for code, method in enumerate(METHODS) if code}


def robust_correct(
    kind: str,
    settings: AttackSettings,
    model: nn.Module,
    parent: nn.Module | None,
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    queries: int,
) -> RobustResult:
    """``parent``: the differentiable model ``model`` was quantized from, or None when ``model``
    itself is differentiable."""
    attack = attack_kinds.get(kind)
    found = torch.zeros(len(labels), dtype=torch.uint8)
    clean = predictions(model, images)
    correct = clean == labels
    found[~correct] = METHODS.index("clean")
    agreement = None
    if settings.strength == 0:  # no perturbation at all (and L2 PGD divides by zero on it)
        return RobustResult(correct, found)
    free = AttackSettings(settings.strength, settings.norm, queries, None, 1)
    square_images = images.shape[-1] == images.shape[-2]  # torchattacks' Square assumes h == w
    if not attack.needs_gradients:
        rounds = [("white-box", attack.build(model, settings, seed), model)]
    elif parent is None:
        rounds = [("white-box", attack.build(model, settings, seed), model)]
        if gradient_problem(model, images, labels) is not None and square_images:  # white-box is blind here
            rounds.append(("gradient-free", attack_kinds.get("square").build(model, free, seed), model))
    else:
        rounds = [("transfer", attack.build(parent, settings, seed), parent)]
        if square_images:
            rounds.append(("gradient-free", attack_kinds.get("square").build(model, free, seed), model))
        twin = fake_quant_twin(model, images[:2])
        if twin is not None:
            agreement = float((predictions(twin, images) == clean).float().mean())
            rounds.insert(0, ("twin", attack.build(twin, settings, seed), twin))
    for method, perturb, attacker in rounds:
        survived = attacked_correct(perturb, attacker, model, images, labels, seed)
        found[correct & ~survived] = METHODS.index(method)
        correct &= survived
    return RobustResult(correct, found, agreement)


def fake_quant_twin(model: nn.Module, example: torch.Tensor) -> nn.Module | None:
    """The differentiable twin of an int8 Classifier, or None when its network has none
    (or it fails on ``example``, a batch of the model's inputs)."""
    net = getattr(model, "net", None)
    if not isinstance(net, Int8Net):
        return None
    try:
        twin = model.with_net(net.twin()).eval()
        with torch.no_grad():  # ops the twin does not know surface here, not inside an attack
            twin(example)
        return twin
    except Exception:  # no twin is a weaker evaluation, not an error; the diagnostics say so
        return None

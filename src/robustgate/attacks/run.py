"""Running an attack over a set of images in batches, reproducibly, and scoring the result."""

from __future__ import annotations

import torch
from torch import nn

from robustgate.attacks.base import Perturb
from robustgate.budget import check_time
from robustgate.errors import RobustgateError

BATCH = 128


def device_of(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def predictions(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    device = device_of(model)
    with torch.inference_mode():
        return torch.cat([model(images[s : s + BATCH].to(device)).argmax(1).cpu() for s in range(0, len(images), BATCH)])


def attacked_correct(
    perturb: Perturb, attacker: nn.Module, scorer: nn.Module, images: torch.Tensor, labels: torch.Tensor, seed: int
) -> torch.Tensor:
    """Per image: does ``scorer`` still classify it right after ``perturb`` attacked ``attacker``?

    Each batch draws its randomness (random starts, noise) from torch's global generator seeded
    with ``seed`` and the batch index inside ``fork_rng``, so results do not depend on what ran before.
    """
    device, out = device_of(attacker), []
    cuda = [device.index or 0] if device.type == "cuda" else []
    attacker.eval()
    for index, start in enumerate(range(0, len(images), BATCH)):
        check_time("attacking")
        x, y = images[start : start + BATCH].to(device), labels[start : start + BATCH].to(device)
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed * 1_000_003 + index)
            adversarial = perturb(x, y).detach()
        if adversarial.shape != x.shape or not bool(((adversarial >= 0) & (adversarial <= 1)).all()):
            raise RobustgateError("an attack returned images of another shape or outside [0, 1]; this is a robustgate bug")
        out.append(predictions(scorer, adversarial.cpu()) == y.cpu())
    return torch.cat(out)

"""Running an attack over a set of images in batches, reproducibly, and scoring the result."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from typing import Any

import torch
from torch import nn

from robustgate.attacks.base import AttackSettings, Perturb, attack_kinds
from robustgate.budget import check_time
from robustgate.errors import RobustgateError
from robustgate.progress import bar

BATCH = 128


def device_of(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def predictions(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    device = device_of(model)
    with torch.inference_mode():
        return torch.cat([model(images[s : s + BATCH].to(device)).argmax(1).cpu() for s in range(0, len(images), BATCH)])


def attacked_correct(
    perturb: Perturb,
    attacker: nn.Module,
    scorer: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    trace: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per image: does ``scorer`` still classify it right after ``perturb`` attacked ``attacker``?

    Each batch draws its randomness (random starts, noise) from torch's global generator seeded
    with ``seed`` and the batch index inside ``fork_rng``, so results do not depend on what ran before.
    ``trace`` collects each batch's ``first_fooled`` when the attack records one (PGD does).
    """
    out = []
    for y, adversarial, first_fooled in _attacked_batches(perturb, attacker, images, labels, seed):
        if trace is not None and first_fooled is not None:
            trace.append(first_fooled)
        out.append(predictions(scorer, adversarial) == y)
    return torch.cat(out)


def _attacked_batches(
    perturb: Perturb, attacker: nn.Module, images: torch.Tensor, labels: torch.Tensor, seed: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """Per batch of :data:`BATCH`: its labels, adversarial images (on the CPU) and ``first_fooled`` (or None)."""
    device = device_of(attacker)
    cuda = [device.index or 0] if device.type == "cuda" else []
    attacker.eval()
    with bar(len(images), f"attacking ({_attack_name(perturb)})", "img") as shown:
        for index, start in enumerate(range(0, len(images), BATCH)):
            check_time("attacking")
            x, y = images[start : start + BATCH].to(device), labels[start : start + BATCH].to(device)
            with torch.random.fork_rng(devices=cuda):
                torch.manual_seed(seed * 1_000_003 + index)
                adversarial = perturb(x, y).detach()
            if adversarial.shape != x.shape or not bool(((adversarial >= 0) & (adversarial <= 1)).all()):
                raise RobustgateError("an attack returned images of another shape or outside [0, 1]; this is a robustgate bug")
            shown.update(len(x))
            yield y.cpu(), adversarial.cpu(), getattr(perturb, "first_fooled", None)


def _attack_name(perturb: Perturb) -> str:
    """``TracedPGD``, ``Square``: what a progress bar calls an attack (its class)."""
    return type(perturb).__name__


Reuse = Callable[[Callable[[], dict[str, Any]]], dict[str, Any]]
"""Where an attack's adversarial images of every image are kept: called with the function that makes them
(``{"images": ..., "first_fooled": ...}``), it returns them, made now or kept from an earlier call with the same
model, images, attack settings and seed."""


def adversarial_images(perturb: Perturb, attacker: nn.Module, images: torch.Tensor, labels: torch.Tensor, seed: int) -> dict[str, Any]:
    """The adversarial image of every image (batched and seeded as :func:`attacked_correct` does, so the same bits),
    and ``first_fooled`` per image when the attack records it (an empty tensor when it does not)."""
    made, traced = [], []
    for _, adversarial, first_fooled in _attacked_batches(perturb, attacker, images, labels, seed):
        made.append(adversarial)
        if first_fooled is not None:
            traced.append(first_fooled)
    first = torch.cat(traced) if len(traced) == len(made) and traced else torch.tensor([], dtype=torch.int16)
    return {"images": torch.cat(made), "first_fooled": first}


def leg_correct(
    kind: str,
    settings: AttackSettings,
    attacker: nn.Module,
    scorer: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    trace: list[torch.Tensor] | None = None,
    reuse: Reuse | None = None,
) -> torch.Tensor:
    """Per image: is ``scorer`` still right after every restart of attack ``kind`` on ``attacker``?

    Restarts (``settings.restarts``, seeded ``seed``, ``seed + 1``, ...) attack only the images the
    scorer still gets right, so each image keeps the first restart that fooled the scorer, not the
    attacker. Kinds that leave the attacker's own mistakes unperturbed (APGD, CW, Square) would never
    touch an image the attacker gets wrong but the scorer gets right; those images get a PGD attack
    of the same norm and strength instead, so every image is attacked. ``trace``: as for
    :func:`attacked_correct`, of the first restart (which attacks every image). ``reuse``: where the first
    restart's adversarial images are kept, so another leg attacking the same model (an int8 variant's transfer
    leg and its fp32 baseline's white-box leg attack the same fp32 model) scores them instead of attacking again;
    the later restarts attack the images *this* scorer still gets right, so they always run.
    """
    attack = attack_kinds.get(kind)
    once = replace(settings, restarts=1)
    standing = torch.ones(len(labels), dtype=torch.bool)
    for restart in range(settings.restarts):
        index = standing.nonzero().flatten()
        if len(index) == 0:
            break
        perturb = attack.build(attacker, once, seed + restart)
        if restart == 0 and reuse is not None:  # every image is attacked: the images are the model's, not the scorer's
            made = reuse(partial(adversarial_images, perturb, attacker, images, labels, seed))
            if trace is not None and len(made["first_fooled"]):
                trace.append(made["first_fooled"])
            standing = predictions(scorer, made["images"]) == labels
            continue
        recorded = trace if restart == 0 else None
        standing[index] = attacked_correct(perturb, attacker, scorer, images[index], labels[index], seed + restart, recorded)
    if attacker is not scorer and not attack.attacks_every_image:
        index = (standing & (predictions(attacker, images) != labels)).nonzero().flatten()
        if len(index):
            pgd = attack_kinds.get("pgd").build(attacker, AttackSettings(settings.strength, settings.norm, None, None, 1), seed)
            standing[index] = attacked_correct(pgd, attacker, scorer, images[index], labels[index], seed)
    return standing

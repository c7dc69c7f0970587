"""Training the baseline for ``weights: train``: a plain, seeded supervised loop."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from robustgate.data.imageset import ImageSet
from robustgate.errors import ModelError
from robustgate.progress import Bar, bar
from robustgate.spec.model import TrainParams

Progress = Callable[[str], None]


def train_classifier(
    model: nn.Module, data: ImageSet, params: TrainParams, *, seed: int, device: torch.device, progress: Progress
) -> dict[str, torch.Tensor]:
    """Train ``model`` (a Classifier taking [0, 1] images) on ``data``; return its state_dict on the CPU.

    Everything random draws from generators seeded by ``seed`` (init is done by the
    caller under the same seed; dropout and other in-model randomness use torch's
    global generator, seeded here inside ``fork_rng`` so the caller's state is kept),
    so a rerun gives the same weights.
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        try:
            return _train(model, data, params, seed=seed, device=device, progress=progress)
        except (RuntimeError, ValueError) as err:  # shapes, memory, numerics: one message, not torch's traceback
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelError(f"training failed: {first}", hint="check the model, its input size and train: settings") from None


def _train(
    model: nn.Module, data: ImageSet, params: TrainParams, *, seed: int, device: torch.device, progress: Progress
) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    model.to(device).train()
    optimizer = _optimizer(model, params)
    steps_per_epoch = -(-len(data) // params.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=params.lr, total_steps=params.epochs * steps_per_epoch
    )
    images, labels = data.floats(), data.labels
    with bar(params.epochs * steps_per_epoch, "training", "step") as shown:
        for epoch in range(params.epochs):
            _train_epoch(model, optimizer, schedule, images, labels, params, epoch, generator, device, progress, shown)
    model.eval()
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler,
    images: torch.Tensor, labels: torch.Tensor, params: TrainParams, epoch: int, generator: torch.Generator,
    device: torch.device, progress: Progress, shown: Bar,
) -> None:
    started = time.perf_counter()
    order = torch.randperm(len(images), generator=generator)
    total_loss, correct = 0.0, 0
    for start in range(0, len(images), params.batch_size):
        shown.update()
        batch = order[start : start + params.batch_size]
        if len(batch) == 1 and len(images) > 1:
            continue  # BatchNorm cannot train on a batch of one; the image is seen in other epochs
        x, y = images[batch], labels[batch]
        if params.augment:
            x = random_shift(x, generator)
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        total_loss += loss.item() * len(batch)
        correct += int((logits.argmax(1) == y).sum())
        shown.set_postfix_str(f"epoch {epoch + 1}/{params.epochs}, loss {loss.item():.3f}", refresh=False)
    if not math.isfinite(total_loss):
            raise ModelError(
                f"training diverged in epoch {epoch + 1} (the loss is not finite)",
                hint="lower train: lr, or check the model's output layer",
            )
    progress(
        f"epoch {epoch + 1}/{params.epochs}: loss {total_loss / len(images):.3f}, "
        f"train accuracy {correct / len(images):.3f} ({time.perf_counter() - started:.1f}s)"
    )


def _optimizer(model: nn.Module, params: TrainParams) -> torch.optim.Optimizer:
    if params.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=params.lr, momentum=0.9, weight_decay=params.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)


def random_shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to 1/8 of its side, padding with zeros (a standard light augmentation)."""
    n, _, h, w = images.shape
    pad = max(1, min(h, w) // 8)
    padded = F.pad(images, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    return torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets.tolist())])

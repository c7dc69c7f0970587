"""Stratified, seeded train/test parts and subsamples, so every class keeps its share."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from robustgate.errors import DataError


def stratified_part(labels: torch.Tensor, part: str, train_share: float, seed: int) -> torch.Tensor:
    """Indices of the ``train`` or ``test`` part of a stratified split; the two parts are disjoint
    and together cover every index, for the same labels, share and seed."""
    train, test = _split(labels, train_share, seed, what=f"split: {train_share}")
    return train if part == "train" else test


def stratified_sample(labels: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
    """Indices of a stratified subsample of ``samples`` items (all of them if there are fewer)."""
    if samples >= len(labels):
        return torch.arange(len(labels))
    chosen, _ = _split(labels, samples, seed, what=f"samples: {samples}")
    return chosen


def _split(labels: torch.Tensor, first: float | int, seed: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    index = np.arange(len(labels))
    counts = torch.bincount(labels)
    present = counts[counts > 0]
    if len(present) and int(present.min()) < 2:
        raise DataError(
            f"cannot stratify ({what}): a class has a single image",
            hint="give every class at least two images, or drop `part:`/`samples:` for this dataset",
        )
    try:
        a, b = train_test_split(index, train_size=first, random_state=seed, stratify=labels.numpy(), shuffle=True)
    except ValueError as err:
        raise DataError(
            f"cannot stratify ({what}) over {len(labels)} images in {len(present)} classes: {err}",
            hint="ask for at least one image per class in each part",
        ) from None
    # Sorted, so a part keeps the source's order and its fingerprint does not depend on sklearn's shuffle.
    return torch.from_numpy(np.sort(a)), torch.from_numpy(np.sort(b))

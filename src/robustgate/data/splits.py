"""Stratified, seeded train/test parts and subsamples, so every class keeps its share.

Written here rather than with sklearn's splitters because those allocate
counts globally: on unbalanced sets (Office-31 has 7 to 100 images a class) a
small class can end up entirely on one side. Here every class is split on its
own, so each part holds every class that has at least two images.
"""

from __future__ import annotations


import torch

from robustgate.errors import DataError


def stratified_part(labels: torch.Tensor, part: str, train_share: float, seed: int) -> torch.Tensor:
    """Indices of the ``train`` or ``test`` part; for the same labels, share and seed the two
    parts are disjoint, cover every index, and both hold every class."""
    counts = _class_counts(labels)
    if counts and min(counts.values()) < 2:
        lonely = ", ".join(str(c) for c, n in counts.items() if n < 2)
        raise DataError(
            f"cannot split into train and test parts: class {lonely} has a single image",
            hint="give every class at least two images, or drop `part:` for this dataset",
        )
    quota = {c: min(max(round(train_share * n), 1), n - 1) for c, n in counts.items()}
    train, test = _per_class(labels, quota, seed)
    return train if part == "train" else test


def stratified_sample(labels: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
    """Indices of ``samples`` items with every class in proportion (all items if there are fewer)."""
    if samples >= len(labels):
        return torch.arange(len(labels))
    counts = _class_counts(labels)
    if samples < len(counts):
        raise DataError(
            f"cannot take a stratified sample of {samples} from {len(counts)} classes",
            hint=f"ask for at least {len(counts)} samples (one per class)",
        )
    chosen, _ = _per_class(labels, _apportion(counts, samples), seed)
    return chosen


def _class_counts(labels: torch.Tensor) -> dict[int, int]:
    classes, counts = torch.unique(labels, return_counts=True)
    return dict(zip(classes.tolist(), counts.tolist()))


def _apportion(counts: dict[int, int], total: int) -> dict[int, int]:
    """One per class, the rest in proportion to the class sizes by largest remainder (sums to ``total``)."""
    spare = {c: n - 1 for c, n in counts.items()}
    left = total - len(counts)
    pool = sum(spare.values())
    exact = {c: left * s / pool for c, s in spare.items()}
    quota = {c: int(q) for c, q in exact.items()}
    by_remainder = sorted(counts, key=lambda c: (-(exact[c] - quota[c]), c))
    for c in by_remainder[: left - sum(quota.values())]:
        quota[c] += 1
    return {c: 1 + quota[c] for c in counts}


def _per_class(labels: torch.Tensor, quota: dict[int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    chosen, rest = [], []
    for cls in sorted(quota):
        members = (labels == cls).nonzero().flatten()
        shuffled = members[torch.randperm(len(members), generator=generator)]
        chosen.append(shuffled[: quota[cls]])
        rest.append(shuffled[quota[cls] :])
    # Sorted, so a part keeps the source's order.
    return torch.sort(torch.cat(chosen)).values, torch.sort(torch.cat(rest)).values

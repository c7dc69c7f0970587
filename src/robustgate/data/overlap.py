"""Evaluated images a model was fitted on: byte-identical images shared with a training,
fine-tuning, distillation or calibration set.

Accuracy on images a model was trained or calibrated on measures memory, not generalisation, and a
spec can do it by accident (a folder listed twice, a split that is not one). Each image's uint8
bytes at the model's input size are hashed (blake2b; written here because the check is a set
intersection of per-image digests, which no data library offers for tensors). Exact duplicates only:
finding near-duplicates needs a feature model, which robustgate does not assume. A set derived
from a training set by a corruption (``from:``) has other bytes and is not matched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from robustgate.data.imageset import ImageSet
from robustgate.spec.fields import dataset_refs
from robustgate.spec.model import BASELINE, Spec


def image_digests(data: ImageSet) -> list[bytes]:
    """One 16-byte digest per image of ``data``, in order."""
    flat = data.images.contiguous().reshape(len(data), -1).numpy()
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


def shared_images(evaluated: list[bytes], fitted: set[bytes]) -> int:
    """How many of the ``evaluated`` images' digests are among the ``fitted`` set's."""
    return sum(digest in fitted for digest in evaluated)


class FittedImages:
    """Per model of a spec, the datasets it was fitted on, and how many images of an evaluated dataset they hold."""

    def __init__(self, spec: Spec, datasets: Callable[[str], ImageSet]) -> None:
        self.spec, self.datasets = spec, datasets
        self._digests: dict[str, list[bytes]] = {}
        self._digest_sets: dict[str, set[bytes]] = {}
        self._seen: dict[tuple[str, str], tuple[int, list[tuple[str, str, int]]]] = {}

    def fitted_on(self, variant: str) -> dict[str, str]:
        """Dataset name -> what fitted ``variant`` on it (the baseline's training set, a step's data)."""
        fitted = {}
        if self.spec.model.train is not None:
            fitted[self.spec.model.train.on] = "the baseline's training set"
        if variant != BASELINE:
            for step in self.spec.variants[variant].steps:
                for _, name in dataset_refs(step.params):
                    fitted.setdefault(name, f"the data of {variant}'s {step.kind} step")
        return fitted

    def seen(self, variant: str, dataset: str) -> tuple[int, list[tuple[str, str, int]]]:
        """How many images of ``dataset`` ``variant`` was fitted on, and per fitted dataset (what it fitted,
        how many of them it holds), largest first. Memoized: every item of a model asks again."""
        if (variant, dataset) not in self._seen:
            evaluated, union, found = self._of(dataset), set(), []
            for name, role in self.fitted_on(variant).items():
                if name not in self._digest_sets:
                    self._digest_sets[name] = set(self._of(name))
                digests = self._digest_sets[name]
                count = shared_images(evaluated, digests)
                if count:
                    found.append((name, role, count))
                    union |= digests
            self._seen[(variant, dataset)] = shared_images(evaluated, union), sorted(found, key=lambda hit: -hit[2])
        return self._seen[(variant, dataset)]

    def _of(self, dataset: str) -> list[bytes]:
        if dataset not in self._digests:
            self._digests[dataset] = image_digests(self.datasets(dataset))
        return self._digests[dataset]

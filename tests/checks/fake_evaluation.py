"""A fake :class:`robustgate.checks.base.Evaluation` for unit tests of checks: labels and logits in, no model,
no training, no pytest run. It answers what a test gave it and fails loudly on anything else, so a check
that starts asking for a new measurement shows up as a KeyError naming it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

CLASSES = 4


def logits_for(labels: torch.Tensor, correct: list[int] | torch.Tensor, classes: int = CLASSES) -> torch.Tensor:
    """Logits whose top-1 is the label where ``correct`` is 1, and the next class where it is 0."""
    right = torch.as_tensor(correct, dtype=torch.bool)
    predicted = torch.where(right, labels, (labels + 1) % classes)
    return torch.nn.functional.one_hot(predicted, classes).float() * 5


def hits(n: int, right: int) -> list[int]:
    """``right`` correct answers out of ``n``, the misses spread over the classes (every 1st, 2nd, ... image)."""
    wrong = {round(i * n / (n - right)) for i in range(n - right)} if right < n else set()
    return [0 if i in wrong else 1 for i in range(n)]


@dataclass
class FakeModels:
    sizes: dict[str, dict[str, float | int]] = field(default_factory=dict)  # variant -> size metrics

    def size_metrics(self, variant: str) -> dict[str, float | int]:
        return dict(self.sizes[variant])


@dataclass
class FakePredictions:
    labels_of: dict[str, torch.Tensor] = field(default_factory=dict)
    logits_of: dict[tuple[str, str], torch.Tensor] = field(default_factory=dict)  # (variant, dataset) -> logits
    # (variant, dataset, corruption, severity) -> logits on the images sample() picks
    corrupted_of: dict[tuple[str, str, str, int], torch.Tensor] = field(default_factory=dict)

    def labels(self, dataset: str) -> torch.Tensor:
        return self.labels_of[dataset]

    def logits(self, variant: str, dataset: str) -> torch.Tensor:
        return self.logits_of[(variant, dataset)]

    def images_id(self, dataset: str, samples: int | None = None) -> str:
        return f"{dataset}[:{samples}]" if samples else dataset

    def sample(self, dataset: str, samples: int | None) -> torch.Tensor | None:
        """The first ``samples`` images (the real one stratifies; a check must not care which it gets)."""
        n = len(self.labels_of[dataset])
        return None if samples is None or samples >= n else torch.arange(samples)

    def corrupted_logits(self, variant: str, dataset: str, corruption: str, severity: int, samples: int | None) -> torch.Tensor:
        return self.corrupted_of[(variant, dataset, corruption, severity)]


class Unmeasured:
    """A part the test gives nothing: any use of it fails the test, naming what was asked."""

    def __init__(self, part: str) -> None:
        self.part = part

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"this test measures no {self.part}, but the check asked for {self.part}.{name}")


@dataclass
class FakeEvaluation:
    predictions: FakePredictions = field(default_factory=FakePredictions)
    models: FakeModels = field(default_factory=FakeModels)
    attacks: Any = field(default_factory=lambda: Unmeasured("attacks"))
    latency: Any = field(default_factory=lambda: Unmeasured("latency"))
    confidence: float | str = 0.95
    seed: int = 0
    other_case: Callable[[str], FakeEvaluation] | None = None

    def answering(self, variant: str, dataset: str, correct: list[int]) -> FakeEvaluation:
        """Make ``variant`` right on the images of ``dataset`` where ``correct`` is 1 (labels cycle the classes)."""
        labels = self.predictions.labels_of.setdefault(dataset, torch.arange(len(correct)) % CLASSES)
        self.predictions.logits_of[(variant, dataset)] = logits_for(labels, correct)
        return self

    def corrupted(self, variant: str, dataset: str, corruption: str, severity: int, correct: list[int]) -> FakeEvaluation:
        """Make ``variant`` right under ``corruption`` at ``severity`` where ``correct`` is 1 (its clean answers first)."""
        labels = self.predictions.labels_of[dataset][: len(correct)]
        self.predictions.corrupted_of[(variant, dataset, corruption, severity)] = logits_for(labels, correct)
        return self

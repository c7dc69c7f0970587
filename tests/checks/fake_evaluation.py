"""A fake :class:`robustgate.checks.base.Evaluation` for unit tests of checks: labels and logits in, no model,
no training, no pytest run. It answers what a test gave it and fails loudly on anything else, so a check
that starts asking for a new measurement shows up as a KeyError naming it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from robustgate.attacks.protocol import METHODS, Policy, RobustResult
from robustgate.latency.measure import LatencyResult

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
    missing: dict[str, str] = field(default_factory=dict)  # model -> why it cannot be built here

    def size_metrics(self, variant: str) -> dict[str, float | int]:
        return dict(self.sizes[variant])

    def unavailable(self, model: str) -> str | None:
        return self.missing.get(model)


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


def robust_result(found_by: list[str], legs: tuple[str, ...] = ("white-box",), **fields: Any) -> RobustResult:
    """A real :class:`RobustResult` from what broke each image first (``METHODS`` names, "robust": nothing did);
    ``fields``: its other fields (twin_agreement, unavailable, ...)."""
    codes = torch.tensor([METHODS.index(method) for method in found_by], dtype=torch.uint8)
    return RobustResult(codes == METHODS.index("robust"), codes, legs=legs, **fields)


def spans(*runs: tuple[str, int]) -> list[str]:
    """``spans(("robust", 60), ("clean", 40))``: per image, what broke it first, in runs."""
    return [method for method, count in runs for _ in range(count)]


@dataclass
class FakeAttacks:
    """Attack results a test chose, per (variant, strength), and each variant's masking findings. Like the real
    one, it judges the contract's policy on every read: a leg missing and not accepted raises, an accepted one
    is carried on the result's ``gaps``."""

    results: dict[tuple[str, float], RobustResult] = field(default_factory=dict)
    findings: dict[str, list[str]] = field(default_factory=dict)  # variant -> masking findings

    def robust(self, variant: str, params: Any, strength: float) -> RobustResult:
        result = self.results[(variant, strength)]
        policy = Policy(frozenset(params.accept_missing), params.min_twin_agreement)
        return replace(result, gaps=policy.gaps(result.unavailable, result.twin_agreement))

    def masking_findings(self, variant: str, params: Any) -> list[str]:
        return list(self.findings[variant])


@dataclass
class FakeLatency:
    """Latency results a test chose, per variant (the real one times queries)."""

    results: dict[str, LatencyResult] = field(default_factory=dict)

    def measure(self, variant: str, params: Any) -> LatencyResult:
        return self.results[variant]


def latency_result(ms: list[float] | np.ndarray, **fields: Any) -> LatencyResult:
    """A real :class:`LatencyResult` from per-query milliseconds (it holds seconds)."""
    return LatencyResult(np.asarray(ms, dtype=np.float64) / 1000, **fields)


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

    def attacked(self, variant: str, strength: float, result: RobustResult, findings: list[str] | None = None,
                 dataset: str = "test") -> FakeEvaluation:
        """Make ``result`` what an attack at ``strength`` finds on ``variant`` (labels of ``dataset`` cycle the
        classes), with ``findings`` its masking findings (none unless given)."""
        self.predictions.labels_of.setdefault(dataset, torch.arange(len(result.correct)) % CLASSES)
        if not isinstance(self.attacks, FakeAttacks):
            self.attacks = FakeAttacks()
        self.attacks.results[(variant, strength)] = result
        self.attacks.findings[variant] = findings if findings is not None else self.attacks.findings.get(variant, [])
        return self

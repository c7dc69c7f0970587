"""One spec's evaluation in a session: its datasets, models, predictions, attacks and timings, composed.

Everything expensive goes through the content-addressed cache, and everything built is kept in
memory for the rest of the session, so N contracts on one variant build it once. Checks read the
parts they need (``evaluation.predictions.logits(...)``); a latency item times with a copy whose
``latency`` part runs pytest-benchmark's rounds (:meth:`LatencyEvaluation.timed_by`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from robustgate.cache import ArtifactCache
from robustgate.data.overlap import FittedImages
from robustgate.data.resolve import SpecDatasets
from robustgate.evaluation.attacks import AttackEvaluation
from robustgate.evaluation.latency import LatencyEvaluation
from robustgate.evaluation.models import ModelStore
from robustgate.evaluation.predictions import Predictions
from robustgate.phases import PhaseClock
from robustgate.spec.model import Spec


def _silent(message: str) -> None:
    """Progress nobody shows."""


@dataclass(frozen=True)
class SpecEvaluation:
    """What one spec's contracts may measure, by concern; built once per spec (and matrix case) per session."""

    spec: Spec
    cache: ArtifactCache
    clock: PhaseClock  # seconds spent training, compressing, predicting, ... (for results.json)
    datasets: SpecDatasets
    fitted_images: FittedImages
    models: ModelStore
    predictions: Predictions
    attacks: AttackEvaluation
    latency: LatencyEvaluation
    other_case: Callable[[str], SpecEvaluation] | None = None  # another matrix case of the spec file, by case name
    announce: Callable[[str], None] = field(default=_silent, repr=False)  # progress lines, already naming the spec

    @classmethod
    def build(
        cls, spec: Spec, cache: ArtifactCache, progress: Callable[[str], None] = _silent,
        other_case: Callable[[str], SpecEvaluation] | None = None,
    ) -> SpecEvaluation:
        """The parts for ``spec``, sharing its cache, datasets and phase clock; nothing is built until asked."""
        case = f"::{spec.case}" if spec.case else ""

        def announce(message: str) -> None:
            progress(f"[{spec.name}{case}] {message}")

        clock, datasets = PhaseClock(), SpecDatasets(spec)
        models = ModelStore(spec, cache, datasets, clock, announce)
        predictions = Predictions(spec, cache, datasets, clock, models, announce)
        return cls(
            spec=spec, cache=cache, clock=clock, datasets=datasets,
            fitted_images=FittedImages(spec, datasets.__getitem__),
            models=models, predictions=predictions,
            attacks=AttackEvaluation(spec, cache, clock, models, predictions, announce),
            latency=LatencyEvaluation(spec, models, clock, announce),
            other_case=other_case, announce=announce,
        )

    @property
    def confidence(self) -> float | str:
        return self.spec.confidence

    @property
    def seed(self) -> int:
        return self.spec.seed

    def progress(self, message: str) -> None:
        self.announce(message)

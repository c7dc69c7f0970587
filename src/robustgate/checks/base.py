"""What a contract kind is: its keys, its label in item ids, and the check it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from robustgate.checks.outcome import Outcome
from robustgate.registry import Registry
from robustgate.spec.fields import Params

if TYPE_CHECKING:  # kinds are looked up when specs are read; torch is imported when they are checked
    import torch


class Evaluation(Protocol):
    """What checks may ask of a run; :class:`robustgate.workspace.Workspace` provides it."""

    @property
    def confidence(self) -> float | str: ...

    @property
    def seed(self) -> int: ...

    def logits(self, variant: str, dataset: str) -> torch.Tensor: ...

    def labels(self, dataset: str) -> torch.Tensor: ...

    def size_metrics(self, variant: str) -> dict[str, float | int]: ...

    def robust(self, variant: str, params: Any, strength: float) -> Any:
        """A :class:`robustgate.attacks.protocol.RobustResult` for an attack contract at one strength."""
        ...

    def masking_findings(self, variant: str, params: Any) -> list[str]: ...

    def images_id(self, dataset: str, samples: int | None = None) -> str:
        """Identifies the exact images (and their order) of ``dataset`` or its ``samples`` subset."""
        ...

    def sample(self, dataset: str, samples: int | None) -> torch.Tensor | None:
        """Indices of a stratified subset of ``dataset`` (None: every image)."""
        ...

    def corrupted_logits(self, variant: str, dataset: str, corruption: str, severity: int, samples: int | None) -> torch.Tensor: ...

    def latency(self, variant: str, params: Any) -> Any:
        """A :class:`robustgate.latency.measure.LatencyResult` for a latency contract (timed now, never cached)."""
        ...


class ContractKind:
    """One registered kind of contract; subclasses declare ``Params`` and implement :meth:`check`."""

    Params: ClassVar[type[Params]]
    gate_keys: ClassVar[frozenset[str]] = frozenset()  # thresholds: keys that change no measurement

    def settings(self, params: Any) -> str:
        """What the contract measures, as JSON without its thresholds: a previous release's numbers
        compare with this run's only where this is the same (see ``max_regression``)."""
        return params.model_dump_json(exclude=set(self.gate_keys))

    def label(self, params: Any) -> str:
        """What goes in brackets in the item id, e.g. the dataset of ``accuracy[printed]``."""
        return ""

    def applies_to_baseline(self, params: Any) -> bool:
        """Whether the uncompressed model gets an item too (not for gates relative to the baseline)."""
        return True

    def headline_metric(self, params: Any) -> str | None:
        """The metric ``max_regression: AMOUNT`` gates (None: the contract must name its metrics)."""
        return None

    def check(self, evaluation: Evaluation, variant: str, params: Any) -> Outcome:
        raise NotImplementedError


contract_kinds: Registry[ContractKind] = Registry("contract kind", base=ContractKind)

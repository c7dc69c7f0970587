"""What a contract kind is: its declared keys, gates and metrics, its label in item ids, and the check it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from robustgate.checks.declaration import GateDecl, MetricDecl
from robustgate.checks.outcome import Outcome
from robustgate.registry import Registry
from robustgate.spec.fields import Params

if TYPE_CHECKING:  # kinds are looked up when specs are read; torch is imported when they are checked
    from collections.abc import Callable

    import torch

    from robustgate.attacks.protocol import RobustResult
    from robustgate.latency.measure import LatencyResult


class Models(Protocol):
    """The spec's models, as checks see them (:class:`robustgate.evaluation.models.ModelStore`)."""

    def size_metrics(self, variant: str) -> dict[str, float | int]: ...

    def unavailable(self, model: str) -> str | None:
        """Why ``model`` cannot be built on this machine (a runtime its variant needs is not installed), or None."""
        ...


class Predictions(Protocol):
    """Labels and logits (:class:`robustgate.evaluation.predictions.Predictions`)."""

    def labels(self, dataset: str) -> torch.Tensor: ...

    def logits(self, variant: str, dataset: str) -> torch.Tensor: ...

    def images_id(self, dataset: str, samples: int | None = None) -> str:
        """Identifies the exact images (and their order) of ``dataset`` or its ``samples`` subset."""
        ...

    def sample(self, dataset: str, samples: int | None) -> torch.Tensor | None:
        """Indices of a stratified subset of ``dataset`` (None: every image)."""
        ...

    def corrupted_logits(self, variant: str, dataset: str, corruption: str, severity: int, samples: int | None) -> torch.Tensor: ...


class Attacks(Protocol):
    """Attack contracts' measurements (:class:`robustgate.evaluation.attacks.AttackEvaluation`)."""

    def robust(self, variant: str, params: Any, strength: float) -> RobustResult:
        """Per-image robustness under an attack contract at one strength."""
        ...

    def masking_findings(self, variant: str, params: Any) -> list[str]: ...


class Latency(Protocol):
    """Latency contracts' measurement (:class:`robustgate.evaluation.latency.LatencyEvaluation`)."""

    def measure(self, variant: str, params: Any) -> LatencyResult:
        """Timed now, never cached."""
        ...


class Evaluation(Protocol):
    """What checks may ask of a run, by concern; :class:`robustgate.evaluation.SpecEvaluation` provides it
    (and tests a fake built from logits and labels)."""

    @property
    def confidence(self) -> float | str: ...

    @property
    def seed(self) -> int: ...

    @property
    def models(self) -> Models: ...

    @property
    def predictions(self) -> Predictions: ...

    @property
    def attacks(self) -> Attacks: ...

    @property
    def latency(self) -> Latency: ...

    @property
    def other_case(self) -> Callable[[str], Evaluation] | None:
        """Another matrix case of the same spec file, by case name (None where no runner fills it in)."""
        ...


class ContractKind:
    """One registered kind of contract: it declares its parameters, gates, metrics and what it needs
    measured, and implements :meth:`check` (plus :meth:`label` and :meth:`headline_metric` where it has them).

    Everything else is derived from the declaration: :attr:`gate_keys`, :meth:`applies_to_baseline`,
    the "needs a gate" message (:meth:`missing_gate`), the regression direction of its metrics
    (:func:`metric_direction`) and its report section (:meth:`describe`). A new kind is one file: see
    ``robustgate.checks.accuracy`` for the shape.
    """

    Params: ClassVar[type[Params]]
    gates: ClassVar[tuple[GateDecl, ...]] = ()  # in the order the "needs a gate" message lists them
    metrics: ClassVar[tuple[MetricDecl, ...]] = ()
    settings_keys: ClassVar[frozenset[str]] = frozenset()  # other keys that change no measurement (attack's strict)
    needs: ClassVar[frozenset[str]] = frozenset()  # the parts of the evaluation it reads (see EVALUATION_PARTS)
    title: ClassVar[str] = ""  # report section heading, e.g. "Clean accuracy"
    summary: ClassVar[str] = ""  # one line: what it gates

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a declaration that names keys its ``Params`` lacks, or parts no evaluation has, at import."""
        super().__init_subclass__(**kwargs)
        fields = set(cls.Params.model_fields)
        keys = [gate.key for gate in cls.gates]
        unknown = (set(keys) | cls.settings_keys) - fields
        if unknown or len(set(keys)) != len(keys) or not cls.needs <= EVALUATION_PARTS:
            raise TypeError(f"{cls.__name__} declares gate or settings keys its Params lacks ({sorted(unknown)}), "
                            f"a gate twice, or needs beyond {sorted(EVALUATION_PARTS)}")

    @property
    def gate_keys(self) -> frozenset[str]:
        """Keys that change no measurement: thresholds, and settings that decide whether a result counts."""
        return frozenset(gate.key for gate in self.gates) | self.settings_keys

    def set_gates(self, params: Any) -> list[GateDecl]:
        """The declared gates ``params`` sets."""
        return [gate for gate in self.gates if getattr(params, gate.key) is not None]

    def missing_gate(self, name: str, params: Any) -> str | None:
        """Why a ``name`` contract with ``params`` checks nothing (None: it sets a gate)."""
        if self.set_gates(params) or not self.gates:
            return None
        keys = [gate.key for gate in self.gates]
        listed = keys[0] if len(keys) == 1 else f"{', '.join(keys[:-1])} or {keys[-1]}"
        return f"{'an' if name[0] in 'aeiou' else 'a'} {name} contract needs a gate: {listed}"

    def applies_to_baseline(self, params: Any) -> bool:
        """Whether the uncompressed model gets an item too: a gate read against the baseline (or an earlier
        run) alone means nothing for it."""
        return any(not gate.relative for gate in self.set_gates(params))

    def models_for(self, params: Any) -> tuple[str, ...] | None:
        """The models this contract's items belong to whatever its ``variants:`` say (None: the usual rule,
        see :func:`robustgate.plan.applies`); e.g. a comparison of two models is one item, under one of them."""
        return None

    def settings(self, params: Any) -> str:
        """What the contract measures, as JSON without its thresholds: a previous release's numbers
        compare with this run's only where this is the same (see ``max_regression``)."""
        return params.model_dump_json(exclude=set(self.gate_keys))

    def label(self, params: Any) -> str:
        """What goes in brackets in the item id, e.g. the dataset of ``accuracy[printed]``."""
        return ""

    def headline_metric(self, params: Any) -> str | None:
        """The metric ``max_regression: AMOUNT`` gates (None: the contract must name its metrics)."""
        return None

    def describe(self) -> str:
        """The kind's report section: its title, what it gates, and each gate with the end it reads."""
        gates = "; ".join(f"{gate.key}: {gate.metric} {gate.op} ({_READS[gate.reads]})" for gate in self.gates)
        return f"{self.title}: {self.summary.rstrip('.')}." + (f" Gates: {gates}." if gates else "")

    def check(self, evaluation: Evaluation, variant: str, params: Any) -> Outcome:
        raise NotImplementedError


EVALUATION_PARTS = frozenset({"predictions", "models", "attacks", "latency"})
_READS = {"lower": "read at its lower bound", "upper": "read at its upper bound", "exact": "exact",
          "point": "read at its estimate"}


contract_kinds: Registry[ContractKind] = Registry("contract kind", base=ContractKind)


def metric_direction(metric: str) -> bool | None:
    """True where higher is better, False where lower is, None for counts, bounds and settings (n, eps,
    ``*_low``), from the :class:`MetricDecl` of every registered kind; a suffix (``accuracy@webcam``,
    ``drop@8/255``) shares its metric's direction. Import :mod:`robustgate.checks` first: it registers the kinds."""
    name = metric.split("@", 1)[0]
    declared = {decl.higher_is_better for kind in map(contract_kinds.get, contract_kinds) for decl in kind.metrics if decl.names(name)}
    if len(declared - {None}) > 1:
        raise TypeError(f"contract kinds disagree on which way {name} is better")
    return next(iter(declared - {None}), None)

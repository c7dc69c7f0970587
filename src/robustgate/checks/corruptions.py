"""``corruptions:`` contracts: accuracy under the ImageNet-C corruptions, summarised as the protocol does.

Hendrycks & Dietterich (ICLR 2019) define, for a model f, corruption c and severity s with top-1
error E^f_{s,c}: the corruption error CE^f_c = sum_s E^f_{s,c} / sum_s E^AlexNet_{s,c}, the relative
CE^f_c = sum_s (E^f_{s,c} - E^f_clean) / sum_s (E^AlexNet_{s,c} - E^AlexNet_clean), and mCE and
relative mCE as their means over the corruptions. Here the spec's fp32 baseline stands where the
protocol has AlexNet. Because that reference can lose almost nothing under some corruptions, the
gated ``relative_mce`` is the ratio of total losses (sum over corruptions and severities of error
minus clean error, variant over baseline), so 1.2 means "the compressed model loses 20% more
accuracy to these corruptions than the model it was made from"; the paper's mean of
per-corruption ratios is reported as ``relative_mce_mean``.

A gate takes a number (the overall summary) or a mapping: ``{mean: 0.7, fog: 0.5, each: 0.4}`` gates
the summary, one corruption, and every corruption of the suite. Every model sees the same corrupted
images, so the intervals of gated numbers are paired and analytic (:mod:`robustgate.checks.clustered`):
accuracies and drops from binomial score intervals at an effective number of images, relative mCE
and CE from Fieller's interval of a ratio of paired means (unbounded above, with a finding, when the
baseline's loss cannot be told from zero). The means of per-corruption ratios that are only
reported (``mce``, ``relative_mce_mean``) keep a percentile bootstrap over images.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from robustgate.checks.accuracy import MAX_DROP
from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.chance import note_if_at_chance, require_reference_above_chance
from robustgate.checks.declaration import GateDecl, MetricDecl, reading
from robustgate.checks.outcome import Outcome
from robustgate.data.corruptions import SUITES, corruptions
from robustgate.progress import bar
from robustgate.registry import did_you_mean
from robustgate.spec.fields import DatasetRef, Params, Probability, one_or_per_name
from robustgate.spec.model import BASELINE

if TYPE_CHECKING:
    import numpy as np
    import torch

Threshold = float | dict[str, float]
# a summary threshold, or thresholds by key (mean, each, a corruption's name)
PerCorruption = Annotated[Probability | dict[str, Probability], one_or_per_name(1.0, "{mean: 0.8, each: 0.5}")]
Ratios = Annotated[float | dict[str, float], one_or_per_name(None, "{mean: 1.1}")]
_SUMMARY, _EACH = "mean", "each"
_RESAMPLES = 2000


class CorruptionsParams(Params):
    on: DatasetRef
    suite: Literal["common", "extra", "all"] | list[str] = "common"
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)
    samples: int | None = Field(None, ge=1)  # a stratified subset of `on` (the same images for every model)
    min_accuracy: PerCorruption | None = None  # accuracy under corruption
    max_drop: PerCorruption | None = None  # corruption accuracy lost vs the baseline
    max_relative_mce: Ratios | None = None  # relative mCE (or CE) vs the baseline

    @field_validator("suite", mode="before")
    @classmethod
    def _known_corruptions(cls, suite: Any) -> Any:
        # before the union (a suite's name | a list) is tried, so a mistake gets one message, not one per branch
        if isinstance(suite, str) and suite not in SUITES:
            if suite in corruptions:
                raise ValueError(f"'{suite}' is one corruption, not a suite; write it as a list: suite: [{suite}]")
            raise ValueError(f"unknown suite '{suite}'; {did_you_mean(suite, list(SUITES))} (or a list of corruption names)")
        if not isinstance(suite, (str, list)) or not all(isinstance(name, str) for name in suite):
            raise ValueError(f"expected {', '.join(SUITES)} or a list of corruption names")
        if isinstance(suite, list):
            if not suite:
                raise ValueError("suite: lists no corruption; name some, or use common, extra or all")
            for name in suite:
                if name not in corruptions:
                    raise ValueError(f"unknown corruption '{name}'; {did_you_mean(name, corruptions.names())}")
            if len(set(suite)) != len(suite):
                raise ValueError("suite: names a corruption twice")
        return suite

    @field_validator("severities")
    @classmethod
    def _severities(cls, severities: list[int]) -> list[int]:
        bad = [s for s in severities if not 1 <= s <= 5]
        if bad:
            raise ValueError(f"severities are the ImageNet-C levels 1 to 5, got {bad[0]}")
        if len(set(severities)) != len(severities):
            raise ValueError("severities: lists a level twice")
        return sorted(severities)

    @model_validator(mode="after")
    def _gates(self) -> "CorruptionsParams":
        allowed = [_SUMMARY, _EACH, *self.names]
        for key in (gate.key for gate in CorruptionsContract.gates):
            gate = getattr(self, key)
            values = list(gate.values()) if isinstance(gate, dict) else [] if gate is None else [gate]
            if isinstance(gate, dict) and not gate:
                raise ValueError(f"{key}: {{}} gates nothing; give a number, or {_SUMMARY}:, {_EACH}: or a corruption's name")
            if key == "max_relative_mce" and any(v <= 0 for v in values):
                raise ValueError("max_relative_mce is a ratio to the baseline (1.0 = as robust); give a positive number")
            for name in gate if isinstance(gate, dict) else []:
                if name not in allowed:
                    raise ValueError(
                        f"{key}: '{name}' is not a corruption of this suite; {did_you_mean(name, allowed)} "
                        f"(keys: {_SUMMARY} for the summary, {_EACH} for every corruption, or a corruption's name)"
                    )
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.suite) if isinstance(self.suite, list) else SUITES[self.suite]


MIN_ACCURACY = GateDecl("min_accuracy", "mean_corruption_accuracy", ">=", "lower")
MAX_RELATIVE_MCE = GateDecl("max_relative_mce", "relative_mce", "<=", "upper", relative=True)
# what each gate reads for one corruption (`{fog: 0.5}`, `{each: 0.4}`) rather than the suite's summary
PER_CORRUPTION = {
    MIN_ACCURACY.key: dataclasses.replace(MIN_ACCURACY, metric="accuracy"),
    MAX_DROP.key: MAX_DROP,
    MAX_RELATIVE_MCE.key: dataclasses.replace(MAX_RELATIVE_MCE, metric="relative_ce"),
}


class CorruptionsContract(ContractKind):
    Params = CorruptionsParams
    gates = (MIN_ACCURACY, MAX_DROP, MAX_RELATIVE_MCE)
    metrics = (
        MetricDecl("mean_corruption_accuracy", True, low="mean_corruption_accuracy_low", high="mean_corruption_accuracy_high"),
        MetricDecl("accuracy", True, low="accuracy_low", high="accuracy_high"),
        MetricDecl("clean_accuracy", True),
        MetricDecl("drop", False, low="drop_low", high="drop_high"),
        MetricDecl("ce", False, low="ce_low", high="ce_high"), MetricDecl("mce", False, low="mce_low", high="mce_high"),
        MetricDecl("relative_ce", False, low="relative_ce_low", high="relative_ce_high"),
        MetricDecl("relative_mce", False, low="relative_mce_low", high="relative_mce_high"),
        MetricDecl("relative_mce_mean", False, low="relative_mce_mean_low", high="relative_mce_mean_high"),
        MetricDecl("baseline_clean_accuracy", None), MetricDecl("baseline_mean_corruption_accuracy", None),
        MetricDecl("baseline_accuracy", None), MetricDecl("n", None), MetricDecl("interval_level", None),
    )
    needs = frozenset({"predictions"})
    title = "Accuracy under corruptions"
    summary = ("accuracy under the ImageNet-C corruptions, the drop against the baseline and the relative mCE, "
               "for the suite or per corruption.")

    def label(self, params: CorruptionsParams) -> str:
        """``common@site-a``, ``gaussian_noise+contrast@site-a``, ``fog-and-4-more@site-a``; severities
        other than all five are named: ``common:severity1+3+5@site-a``."""
        suite: str
        if isinstance(params.suite, str):
            suite = params.suite
        else:
            suite = "+".join(params.suite) if len(params.suite) <= 3 else f"{params.suite[0]}-and-{len(params.suite) - 1}-more"
        severities = sorted(set(params.severities))
        shown = "" if severities == [1, 2, 3, 4, 5] else f":severity{'+'.join(map(str, severities))}"
        return f"{suite}{shown}@{params.on}"

    def headline_metric(self, params: CorruptionsParams) -> str:
        return "mean_corruption_accuracy"

    def check(self, evaluation: Evaluation, variant: str, params: CorruptionsParams) -> Outcome:
        import numpy as np  # numpy, torch and scipy only when evaluating: validating a spec must not import them
        import torch

        outcome = Outcome(contract=f"corruptions[{self.label(params)}]", variant=variant)
        read = reading(evaluation.confidence)
        level = read.level
        names, severities = params.names, params.severities
        compare = variant != BASELINE
        measured = _Errors.measure(evaluation, (variant, BASELINE) if compare else (variant,), params)
        model, base = measured[0], measured[-1]
        stats = _Summary(model, base, len(names), len(severities))
        estimate = stats(np.arange(model.clean.shape[0])[None])[:, 0]
        low, high = _bootstrap(stats, model.clean.shape[0], level, evaluation)
        value = dict(zip(stats.keys(names), zip(estimate, low, high)))
        for metric, (lo, hi) in _paired_intervals(model, base, names, len(severities), level).items():
            est = value[metric][0]
            value[metric] = (est, min(lo, est), max(hi, est))

        m = outcome.metrics
        m.update(clean_accuracy=1 - float(model.clean.mean()), n=int(model.clean.shape[0]), interval_level=level)
        for c, name in enumerate(names):
            for s, severity in enumerate(severities):
                m[f"accuracy@{name}/{severity}"] = 1 - float(model.errors[c * len(severities) + s].mean())
                outcome.axes[f"{name}/{severity}"] = {"corruption": name, "severity": severity}  # the heatmap's cell
        for metric, (est, lo, hi) in value.items():
            if not compare and metric.split("@")[0] in ("drop", "ce", "relative_ce", "mce", "relative_mce", "relative_mce_mean"):
                continue
            m[metric] = float(est)
            m[f"{metric}_low"], m[f"{metric}_high"] = float(lo), float(hi)
        if compare:
            m["baseline_clean_accuracy"] = 1 - float(base.clean.mean())
            m["baseline_mean_corruption_accuracy"] = float(value["mean_corruption_accuracy"][0] + value["drop"][0])
            for c, name in enumerate(names):  # the baseline's own numbers, shown beside each relative gate and plot
                m[f"baseline_accuracy@{name}"] = float(value[f"accuracy@{name}"][0] + value[f"drop@{name}"][0])
                for s, severity in enumerate(severities):
                    m[f"baseline_accuracy@{name}/{severity}"] = 1 - float(base.errors[c * len(severities) + s].mean())
            if params.max_relative_mce is not None:
                outcome.findings = stats.undefined(names)

        def add_gates(decl: GateDecl, threshold: Threshold) -> None:
            wanted = threshold if isinstance(threshold, dict) else {_SUMMARY: threshold}
            for key, limit in wanted.items():
                chosen = [(decl, "")] if key == _SUMMARY else [(PER_CORRUPTION[decl.key], f"@{n}") for n in (names if key == _EACH else [key])]
                for gated, suffix in chosen:
                    est, lo, hi = (float(v) for v in value[gated.metric + suffix])
                    gate = gated.judge(limit, est, lo, hi, read, suffix)
                    outcome.gates.append(gate)
                    if math.isinf(gate.value) and math.isfinite(est):
                        outcome.findings.append(
                            f"{gate.metric}: the baseline's loss of accuracy to {suffix[1:] or 'these corruptions'} "
                            f"cannot be told from zero on {m['n']} images, so the data cannot bound the ratio: its {gate.read} "
                            "is infinite (evaluate more images, or gate max_drop instead)"
                        )

        labels = evaluation.predictions.labels(params.on)
        index = evaluation.predictions.sample(params.on, params.samples)
        labels = labels if index is None else labels[index]
        who = variant if compare else "baseline"
        note_if_at_chance(outcome, torch.from_numpy(model.clean == 0), labels, read, params.on, who)
        for decl in self.set_gates(params):
            if compare or not decl.relative:
                add_gates(decl, getattr(params, decl.key))
        if compare and (params.max_drop is not None or params.max_relative_mce is not None):
            require_reference_above_chance(outcome, torch.from_numpy(base.clean == 0), labels, read, params.on)
        return outcome


class _Errors:
    """Per-image top-1 errors of one model: ``clean`` (n,) and ``errors`` (corruptions x severities, n)."""

    def __init__(self, clean: np.ndarray, errors: np.ndarray) -> None:
        self.clean, self.errors = clean, errors

    @classmethod
    def measure(cls, evaluation: Evaluation, variants: tuple[str, ...], params: CorruptionsParams) -> list["_Errors"]:
        """Each of ``variants``' errors, corruption by corruption: every model predicts a corrupted set in turn, so
        a set is made once even when the sets do not all fit in memory (224-pixel images)."""
        import numpy as np

        indices = evaluation.predictions.sample(params.on, params.samples)
        labels = evaluation.predictions.labels(params.on)
        labels = labels if indices is None else labels[indices]

        def wrong(logits: torch.Tensor) -> np.ndarray:
            return (logits.argmax(dim=1) != labels).numpy().astype(np.float64)

        clean = []
        for variant in variants:
            logits = evaluation.predictions.logits(variant, params.on)
            clean.append(wrong(logits if indices is None else logits[indices]))
        rows: list[list[np.ndarray]] = [[] for _ in variants]
        total = len(params.names) * len(params.severities) * len(variants)
        with bar(total, f"corruptions on '{params.on}'", "set") as shown:
            for name in params.names:
                for severity in params.severities:
                    for row, variant in zip(rows, variants):
                        logits = evaluation.predictions.corrupted_logits(variant, params.on, name, severity, params.samples)
                        row.append(wrong(logits))
                        shown.update()
        return [cls(errors, np.stack(row)) for errors, row in zip(clean, rows)]


class _Summary:
    """The contract's statistics from resampled image indices, vectorised for scipy's bootstrap."""

    def __init__(self, model: _Errors, base: _Errors, corruptions: int, severities: int) -> None:
        self.model, self.base = model, base
        self.shape = (corruptions, severities)

    @staticmethod
    def keys(names: tuple[str, ...]) -> list[str]:
        keys = ["mean_corruption_accuracy", *(f"accuracy@{n}" for n in names), "drop", *(f"drop@{n}" for n in names)]
        keys += ["mce", *(f"ce@{n}" for n in names), "relative_mce", *(f"relative_ce@{n}" for n in names)]
        return keys + ["relative_mce_mean"]

    def __call__(self, index: np.ndarray, axis: int = -1) -> np.ndarray:
        import numpy as np

        def rates(errors: np.ndarray) -> np.ndarray:  # (..., resamples)
            return errors[..., index].mean(axis=-1)

        e_model = rates(self.model.errors).reshape(*self.shape, -1)
        e_base = rates(self.base.errors).reshape(*self.shape, -1)
        clean_model, clean_base = rates(self.model.clean), rates(self.base.clean)
        accuracy = 1 - e_model.mean(axis=1)  # per corruption, over severities
        drop = e_model.mean(axis=1) - e_base.mean(axis=1)
        ce = _ratio(e_model.sum(axis=1), e_base.sum(axis=1))
        lost_model, lost_base = (e_model - clean_model).sum(axis=1), (e_base - clean_base).sum(axis=1)
        relative = _ratio(lost_model, lost_base)
        rows = []
        for per in (accuracy, drop, ce):
            rows += [per.mean(axis=0, keepdims=True), per]
        # Relative mCE as the ratio of total losses: the paper's mean of per-corruption ratios assumes
        # a reference (AlexNet) that loses a lot everywhere; against the fp32 model a corruption it
        # barely minds divides by a count near zero and swings the mean (reported as relative_mce_mean).
        pooled = _ratio(lost_model.sum(axis=0, keepdims=True), lost_base.sum(axis=0, keepdims=True))
        rows += [pooled, relative, relative.mean(axis=0, keepdims=True)]
        return np.concatenate(rows, axis=0)

    def undefined(self, names: tuple[str, ...]) -> list[str]:
        """Corruptions where the baseline loses no accuracy but the model does: an infinite relative CE."""

        def lost(errors: _Errors) -> np.ndarray:
            return (errors.errors - errors.clean).reshape(*self.shape, -1).mean(axis=-1).sum(axis=1)

        return [
            f"the baseline loses no accuracy under {name} at these severities but this model does: its relative CE "
            "there is infinite (relative mCE divides by the baseline's loss)"
            for name, base, model in zip(names, lost(self.base), lost(self.model))
            if base <= 0 < model
        ]


def _paired_intervals(
    model: _Errors, base: _Errors, names: tuple[str, ...], severities: int, level: float,
) -> dict[str, tuple[float, float]]:
    """Analytic, paired interval ends of every gated number (and of CE) over all conditions and per corruption."""
    import numpy as np

    from robustgate.checks import clustered

    out = {}
    every = slice(0, len(names) * severities)
    groups = [("", every), *((f"@{name}", slice(c * severities, (c + 1) * severities)) for c, name in enumerate(names))]
    for tag, rows in groups:
        right, base_right = model.errors[rows] == 0, base.errors[rows] == 0
        resolution = 1 / (rows.stop - rows.start)  # one condition of one image
        accuracy = clustered.accuracy(right, level)
        drop = clustered.paired_drop(base_right, right, level)
        relative = clustered.fieller_ratio(model.errors[rows].mean(axis=0) - model.clean,
                                           base.errors[rows].mean(axis=0) - base.clean, level, resolution)
        out["mean_corruption_accuracy" if not tag else f"accuracy{tag}"] = accuracy
        out[f"drop{tag}"] = drop
        out["relative_mce" if not tag else f"relative_ce{tag}"] = relative
        if tag:
            errors, base_errors = model.errors[rows].mean(axis=0), base.errors[rows].mean(axis=0)
            out[f"ce{tag}"] = clustered.fieller_ratio(errors, base_errors, level, resolution)
    ends = {key: (float(np.asarray(i.low)), float(np.asarray(i.high))) for key, i in out.items()}
    # an error ratio (CE) is never below 0, whatever an unbounded Fieller set says
    return {key: (max(low, 0.0) if key.startswith("ce@") else low, high) for key, (low, high) in ends.items()}


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, where a denominator <= 0 (the baseline unharmed) gives 1 for a numerator
    <= 0 (unharmed too) and infinity otherwise: a gate never passes on a division by zero."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = numerator / np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, ratio, np.where(numerator <= 0, 1.0, np.inf))


def _bootstrap(stats: _Summary, n: int, level: float, evaluation: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np
    from scipy.stats import bootstrap

    with np.errstate(invalid="ignore"):  # an infinite relative CE (unharmed baseline) makes inf - inf in percentiles
        result = bootstrap(
            (np.arange(n),), stats, vectorized=True, n_resamples=_RESAMPLES, batch=_batch(stats, n), confidence_level=level,
            method="percentile", random_state=np.random.default_rng(evaluation.seed),
        )
    low, high = result.confidence_interval.low, result.confidence_interval.high
    # inf - inf is nan: an end that interpolates between infinite ratios is infinite (unbounded), never nan
    return np.where(np.isnan(low), -np.inf, low), np.where(np.isnan(high), np.inf, high)


def _batch(stats: _Summary, n: int) -> int:
    """Resamples per vectorised call: each gathers conditions x batch x n float64s, kept near 400 MB."""
    conditions = stats.model.errors.shape[0]
    return max(1, min(200, 50_000_000 // (conditions * n)))


contract_kinds.register("corruptions")(CorruptionsContract())

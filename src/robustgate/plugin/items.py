"""Spec files become collectors: one node per model (baseline and variants), one item per contract.

Items are ``pytest.Function`` objects, so fixtures work on them (latency items request
pytest-benchmark's ``benchmark``), and ids read
``robustness_specs/quickstart.yaml::int8::accuracy[printed]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from robustgate.budget import ItemMeter, metered
from robustgate.checks import contract_kinds
from robustgate.checks.fitted import add_seen_in_training
from robustgate.errors import RobustgateError
from robustgate.plugin.hooks import session_of
from robustgate.plugin.progress_bars import terminal_bars
from robustgate.plugin.verdict import ContractViolation, EvaluationWarning, RegressionWarning, ViolationRepr
from robustgate.reports.previous_release import read_regression_gates
from robustgate.reports.record import ItemRecord
from robustgate.spec import Contract, Spec, load_cases
from robustgate.spec.fields import dataset_refs
from robustgate.spec.parse import problems_error
from robustgate.spec.preflight import factory_problems
from robustgate.threads import evaluation_share
from robustgate.plan import applies, missing_data, missing_runtime, models
from robustgate.progress import drawn_by

if TYPE_CHECKING:  # built when an item runs: collecting imports no torch
    from robustgate.evaluation import SpecEvaluation


class PlainErrors(pytest.Collector):
    """A collector whose robustgate errors read as their one message, without a traceback."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, RobustgateError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class SpecFile(pytest.File, PlainErrors):
    """A YAML file carrying ``robustgate:``; a malformed one fails collection with one clear message.

    A spec with a ``matrix:`` holds one :class:`CaseNode` per case (``spec.yaml::resnet50-amazon::int8::...``)."""

    def collect(self) -> Iterator[pytest.Collector]:
        importable(self.path.parent, self.config.rootpath)
        for spec in load_cases(self.path, self.config.getoption("robustgate_profile", None)):
            if problems := factory_problems(spec):
                raise problems_error(spec.lines.path, problems)
            session_of(self.config).spec_collected(self.nodeid, spec)
            if spec.case is None:
                yield from model_nodes(self, spec)
            else:
                yield CaseNode.from_parent(self, name=spec.case, spec=spec)


def importable(*folders: Path) -> None:
    """Put the spec's folder and the rootdir on ``sys.path`` (first, as pytest's ``pythonpath`` ini does),
    so ``arch: "mymodels:build"`` finds ``mymodels.py`` beside the spec or at the project's root under a
    plain ``pytest``, which, unlike ``python -m pytest``, does not put the current folder there."""
    for folder in reversed(folders):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


class NotASpec(pytest.File, PlainErrors):
    """A YAML file named on the command line that has no top-level ``robustgate:`` key."""

    def collect(self) -> Iterator[pytest.Item]:
        raise RobustgateError(
            f"{self.path.name} has no top-level `robustgate:` key, so it is not a robustgate spec and nothing in it runs",
            where=f"{os.path.relpath(self.path, self.config.invocation_params.dir)}:1",
            hint="start a spec with the line `robustgate: 1` (then model:, datasets:, variants: and contracts:)",
        )


class CaseNode(PlainErrors):
    """One case of a spec's matrix (e.g. ``resnet50-amazon``): a whole spec of its own; ``-k resnet50`` selects it."""

    def __init__(self, *, spec: Spec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def collect(self) -> Iterator[pytest.Collector]:
        yield from model_nodes(self, self.spec)


def model_nodes(parent: pytest.Collector, spec: Spec) -> Iterator["ModelNode"]:
    """The spec's models that have a contract, each skipped with one message when its data are missing."""
    missing = missing_data(spec)
    for model in models(spec):
        if any(applies(contract, model) for contract in spec.contracts):
            node = ModelNode.from_parent(parent, name=model, spec=spec)
            skipped = missing or missing_runtime(spec, model)
            if skipped:  # every item skips with the same message, and results.json lists each
                node.add_marker(pytest.mark.skip(reason=skipped))
            yield node


class ModelNode(PlainErrors):
    """The contracts that apply to one model of a spec; ``-k int8`` selects them."""

    def __init__(self, *, spec: Spec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def collect(self) -> Iterator[pytest.Item]:
        contracts = [contract for contract in self.spec.contracts if applies(contract, self.name)]
        for contract, params in zip(contracts, item_params(contracts, self.spec)):
            call = robustgate_latency if contract.kind == "latency" else robustgate_contract
            name = f"{contract.kind}[{params}]" if params else contract.kind
            yield ContractItem.from_parent(
                self, name=name, originalname=contract.kind, callobj=call, spec=self.spec, contract=contract,
                variant=self.name, id_params=params or None,
            )


def item_params(contracts: list[Contract], spec: Spec) -> list[str]:
    """What goes in brackets in each contract's item id, from its content alone, never its position, so
    inserting or moving a contract changes no other id (``--lf``, ``-k`` and baselines keep matching).

    The kind's label (``printed``, ``pgd:8/255@site-a``) names what is measured. Contracts of one model
    measuring under the same label add what tells them apart: the measured settings that differ
    (``:steps50``), else the gates they set (``:min``, ``:max_drop``), else a digest of their text."""
    labels = [contract_kinds.get(c.kind).label(c.params) for c in contracts]
    params = list(labels)
    for label in dict.fromkeys(labels):
        group = [i for i, other in enumerate(labels) if other == label]
        if len(group) == 1:
            continue
        tags = _distinguishing(
            [contracts[i] for i in group],
            [lambda c: _differing_settings(c, [contracts[i] for i in group]),  # noqa: B023 (called in this iteration)
             lambda c: "+".join(sorted(gate.key for gate in contract_kinds.get(c.kind).set_gates(c.params))),
             lambda c: hashlib.sha256(f"{c.params.model_dump_json()}{c.variants}{c.max_regression}{c.budget}".encode()).hexdigest()[:6]],
        )
        if tags is None:
            first, second = (contracts[i] for i in group[:2])
            raise RobustgateError(
                f"the contract at line {second.line} repeats the one at line {first.line} for {contracts[group[0]].kind} "
                f"on the same model{f' ({label})' if label else ''}",
                where=spec.where(second.line), hint="delete one of them",
            )
        for i, tag in zip(group, tags):
            params[i] = f"{label}:{tag}" if label else tag
    return params


def _distinguishing(group: list[Contract], ways: list[Any]) -> list[str] | None:
    """The first way of tagging the ``group``'s contracts that gives each a different tag; None: none does."""
    for way in ways:
        tags = [way(contract) for contract in group]
        if all(tags) and len(set(tags)) == len(tags):
            return tags
    return None


def _differing_settings(contract: Contract, group: list[Contract]) -> str:
    """``steps50+samples200`` (``steps-default``: not set): the measured settings of ``contract`` whose values differ within ``group``."""
    kind = contract_kinds.get(contract.kind)
    measured = [json.loads(kind.settings(c.params)) for c in group]
    own = json.loads(kind.settings(contract.params))
    keys = [key for key in own if len({json.dumps(m.get(key), sort_keys=True) for m in measured}) > 1]

    def shown(value: Any) -> str:
        if isinstance(value, list):
            return "+".join(map(shown, value))
        if isinstance(value, float):
            return f"{value:g}"
        return "none" if value is None else str(value).replace(" ", "")

    return "+".join(f"{key}-default" if own[key] is None else f"{key}{shown(own[key])}" for key in keys)


def technique(spec: Spec, variant: str) -> str:
    """How a model was made, for plots by technique: ``baseline``, ``int8``, ``prune+int8`` (its step kinds)."""
    if variant not in spec.variants:
        return "baseline"
    return "+".join(step.kind for step in spec.variants[variant].steps) or "baseline"


def settings_digest(contract: Contract) -> str:
    """A digest of what the contract measures: its kind and keys, without thresholds."""
    measured = contract_kinds.get(contract.kind).settings(contract.params)
    return hashlib.sha256(f"{contract.kind}:{measured}".encode()).hexdigest()[:16]


def robustgate_contract(request: pytest.FixtureRequest) -> None:
    """Evaluate this item's contract (the item is a robustgate ContractItem)."""
    request.node.run_contract()


def robustgate_latency(request: pytest.FixtureRequest, benchmark: Any) -> None:
    """Time this item's model: a pytest-benchmark benchmark, so --benchmark-skip/-only/-json/-compare apply."""
    request.node.run_latency(benchmark)


class ContractItem(pytest.Function):
    """One (model, contract) pair."""

    def __init__(self, *, spec: Spec, contract: Contract, variant: str, id_params: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        parent_id = getattr(self.parent, "id", None)
        if parent_id is not None and id_params is not None:
            # pytest 9 matches --lf/--sw entries by structured ids (name plus "[params]"), built for
            # parametrized tests from their callspec; build "accuracy[printed]" the same way, or the
            # id saved by --lf would not match the item on the next run.
            self._id = parent_id.child(self.originalname).with_params(id_params)
        self.spec = spec
        self.contract = contract
        self.variant = variant
        self.robustgate_session = session_of(self.config)
        # what every report says of this item; who it is is set here, not when it runs, so that an item that
        # skips or breaks in setup is reported as this contract too (the hooks carry it on pytest's reports)
        self.robustgate_record = ItemRecord(
            nodeid=self.nodeid, spec=self.nodeid.split("::")[0], model=self.variant, contract=self.name,
            kind=contract.kind, datasets=list(dict.fromkeys(name for _, name in dataset_refs(contract.params))),
            case=spec.case or "", technique=technique(spec, self.variant), settings=settings_digest(contract),
        )
        self.phase_seconds: dict[str, float] = {}

    def run_latency(self, benchmark: Any) -> None:
        from dataclasses import replace

        from robustgate.plugin.benchmark import benchmark_runner, disabled_by_user, fill_extra_info, previous_p50_ms, under_xdist

        if under_xdist(self.config) and not self.config.getoption("robustgate_force_latency"):
            pytest.skip(
                "latency is not timed under pytest-xdist: parallel workers share the cores, so the numbers would "
                "measure the load. Run latency items in a serial run (-p no:xdist -k latency), or pass "
                "--robustgate-force-latency"
            )
        evaluation = self.robustgate_session.evaluation(self.spec)
        if disabled_by_user(self.config):  # --benchmark-disable: run once as a plain test, time nothing
            evaluation.latency.smoke(self.variant, self.contract.params)
            # a gate nothing measured must not read as kept: skip, saying the model did answer
            pytest.skip("not timed (--benchmark-disable): the model answered one untimed query, so no latency "
                        "gate was read; run without --benchmark-disable to time it")
        # pytest-benchmark names a benchmark after the test function; ours are all "latency"
        case = f"::{self.spec.case}" if self.spec.case else ""
        benchmark.name, benchmark.group = f"{self.variant}::{self.name}", f"{self.spec.name}{case}::{self.name}"
        latency = evaluation.latency.timed_by(benchmark_runner(benchmark), previous_p50_ms(self.config, self.nodeid))
        try:
            outcome = self.run_contract(replace(evaluation, latency=latency))
        except ContractViolation as violation:
            fill_extra_info(benchmark, violation.outcome, self.contract.params, latency.runtime(self.variant))
            raise
        fill_extra_info(benchmark, outcome, self.contract.params, latency.runtime(self.variant))

    def run_contract(self, evaluation: SpecEvaluation | None = None) -> Any:
        evaluation = evaluation or self.robustgate_session.evaluation(self.spec)
        before = dict(evaluation.clock.seconds)
        try:
            # xdist workers each evaluate on their share of the cores (builds keep all: see robustgate.threads)
            workers = self.config.workerinput["workercount"] if hasattr(self.config, "workerinput") else 1
            bars = drawn_by(terminal_bars(self.config))
            with metered(self._budget_meter(evaluation.clock)), evaluation_share(workers), bars:
                outcome = contract_kinds.get(self.contract.kind).check(evaluation, self.variant, self.contract.params)
        except RobustgateError as err:  # e.g. a `samples:` the data cannot satisfy: point at the contract
            raise err.at(self.spec.where(self.contract.line)) from None
        self.phase_seconds = evaluation.clock.since(before)  # this item's share of training, prediction, ...
        for metric, value in evaluation.models.size_metrics(self.variant).items():  # every item reports the model's size
            outcome.metrics.setdefault(metric, value)
        for dataset in dict.fromkeys(name for _, name in dataset_refs(self.contract.params)):
            count, seen = evaluation.fitted_images.seen(self.variant, dataset)
            size = len(evaluation.datasets[dataset])
            add_seen_in_training(outcome, dataset, size, count, seen, self.contract.seen_in_training)
        unread = self._regression_gates(outcome, evaluation.confidence)
        if not outcome.gates and unread:
            # nothing to compare with yet: skip, but keep what was measured so a saved release holds it
            self._record(outcome)
            pytest.skip(f"max_regression not read: {unread}, and this contract gates nothing else")
        if not outcome.gates and outcome.unread:  # a gate nothing measured skips: neither kept nor broken
            self._record(outcome)
            pytest.skip(f"{'; '.join(outcome.unread)}, and this contract gates nothing else")
        if not outcome.gates:  # a contract that checked nothing must not count as kept
            why = f": {'; '.join(outcome.findings)}" if outcome.findings else ""
            raise RobustgateError(
                f"{self.contract.kind} contract read no gate on {self.variant}{why}", where=self.spec.where(self.contract.line)
            )
        self._record(outcome)
        if not outcome.passed:
            raise ContractViolation(outcome, self.name, self.spec.where(self.contract.line), self._source_line())
        return outcome

    def _budget_meter(self, clock: Any) -> ItemMeter | None:
        """The contract's `budget:`, else the spec's; None when neither sets one."""
        budget = self.contract.budget or self.spec.budget
        if budget is None:
            return None
        where = "the contract's" if self.contract.budget else f"the spec's (line {self.spec.lines.line(('budget',))})"
        return ItemMeter(budget, clock, f"raise {where} `budget:`, or evaluate fewer images (`samples:` on the "
                                        "dataset or the contract, fewer strengths or corruptions)")

    def _record(self, outcome: Any) -> None:
        """What the item measured, into its record; findings also into pytest's warnings summary."""
        for finding in outcome.findings:  # shown in pytest's warnings summary; a failure only under strict: true
            warnings.warn(EvaluationWarning(f"{self.variant} :: {self.name}: {finding}"), stacklevel=1)
        session, record = self.robustgate_session, self.robustgate_record
        record.measured(outcome, self.phase_seconds, per_image=session.saving_release)
        if session.previous_release is not None:  # the report's comparison with it
            record.previous = session.previous_release.compared(self.nodeid, record.metrics)

    def _regression_gates(self, outcome: Any, confidence: float | str) -> str | None:
        """``max_regression:`` against the release given by --robustgate-baseline; says why when it read none
        (None: it read them all, or the contract sets none)."""
        if not self.contract.max_regression:
            return None
        try:
            unread = read_regression_gates(outcome, self.contract.max_regression, self.robustgate_session.previous_release,
                                           self.nodeid, self.robustgate_record.settings, confidence)
        except RobustgateError as err:
            raise err.at(self.spec.where(self.contract.line)) from None
        for why in unread:
            warnings.warn(RegressionWarning(f"{self.variant} :: {self.name}: max_regression not read: {why}"), stacklevel=1)
        return "; ".join(unread) or None

    def _source_line(self) -> str:
        try:
            return self.spec.path.read_text(encoding="utf-8").splitlines()[self.contract.line - 1]
        except (OSError, IndexError):
            return ""

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, self.contract.line - 1, f"{self.variant}::{self.name}"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:  # type: ignore[override]
        if isinstance(excinfo.value, ContractViolation):
            return ViolationRepr(excinfo.value)
        if isinstance(excinfo.value, RobustgateError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

"""Whether a valid spec can run on this machine: what ``robustgate validate`` checks beyond the spec's text.

Reading a spec (:mod:`robustgate.spec.parse`) checks what the file says; this checks what it points at:
data folders and files (as a run's collection does for ``missing: skip`` data), ``weights:`` files
(there, and a PyTorch checkpoint as far as a header read tells), torchvision's pretrained files, factory
modules (importable from the spec's folder or the rootdir, with the named function taking the given
kwargs), and class counts with ImageFolder classes counted on disk. Each problem is one
``key: problem; fix`` at the key's line, like the parser's. Nothing is built or loaded: torch is imported
only for pretrained weights (to find their file), and a factory's module imports what it imports.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from robustgate.checkpoints import checkpoint_problem, is_pretrained
from robustgate.compressors.distill import DistillParams
from robustgate.errors import RobustgateError
from robustgate.spec.factories import find_factory, is_factory
from robustgate.spec.model import DatasetEntry, Spec
from robustgate.spec.parse import class_count_problems, dotted
from robustgate.spec.paths import resolve_path
from robustgate.spec.yamlmarks import Loc


@dataclass
class Preflight:
    """The problems that stop a spec from running here (``(line, "key: problem; fix")``), and what is not here
    but stops nothing (a run skips the spec): ``{why: [what]}``."""

    problems: list[tuple[int, str]] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)


def preflight(spec: Spec) -> Preflight:
    """Check what ``spec`` reads and imports on this machine (see the module's docstring)."""
    found = Preflight()

    def problem(loc: Loc, message: str, line: int | None = None) -> None:
        found.problems.append((line or spec.lines.line(loc), f"{dotted(loc)}: {message}" if loc else message))

    skipped = _check_data(spec, problem, found.notes)
    _check_weights_file(spec, problem)
    for net in _networks(spec):
        if is_factory(net.arch):
            _check_factory(spec, net, problem)
        if net.weights is not None and is_pretrained(net.weights):
            missing = _pretrained_missing(net.arch, net.weights)
            if missing and skipped:  # the run skips the spec here, so it never reads them
                why = ("torchvision's pretrained weights for these are not on this machine either; a run that has the data "
                       "needs them (robustgate fetch-weights ARCH)")
                found.notes.setdefault(why, []).append(net.arch.removeprefix("torchvision:"))
            elif missing:
                problem(net.where + ("weights",), missing, net.line)
    return found


def _check_data(spec: Spec, problem: Callable[..., None], notes: dict[str, list[str]]) -> bool:
    """Report data that is not there (a note for ``missing: skip`` data, which skips the spec's items) and class
    counts that do not match; whether the run skips the spec on this machine."""
    from robustgate.data.kinds import dataset_kinds

    absent, skipped = set(), False
    for name, entry in spec.datasets.items():
        why = dataset_kinds.get(entry.kind).unavailable(entry.params, spec.directory)
        if why is None:
            continue
        absent.add(name)
        if getattr(entry.params, "missing", "fail") == "skip":
            skipped = True
            notes.setdefault(f"not on this machine (missing: skip), so a run skips this spec's items: {why}", []).append(name)
        else:
            problem(("datasets", name, entry.kind), why)
    counts: dict[str, int | None] = {}

    def counted(entry: DatasetEntry) -> int | None:
        if entry.name not in counts:
            counts[entry.name] = None
            if entry.name not in absent:
                try:
                    counts[entry.name] = dataset_kinds.get(entry.kind).counted_classes(entry.params, spec.directory)
                except RobustgateError as err:
                    problem(("datasets", entry.name, entry.kind), err.one_line())
        return counts[entry.name]

    for line, message in class_count_problems(spec, counted):
        problem((), message, line)
    return skipped


def _check_weights_file(spec: Spec, problem: Callable[..., None]) -> None:
    weights = spec.model.weights
    if weights == "train" or is_pretrained(weights):
        return
    try:
        path = resolve_path(weights, spec.directory)
    except RobustgateError as err:
        problem(("model", "weights"), err.one_line())
        return
    if not path.exists():
        problem(("model", "weights"), f"weights file '{weights}' does not exist (looked for {path}); give the path of a "
                "state_dict saved with torch.save(model.state_dict(), PATH), relative to the spec file, or use weights: train")
        return
    why = checkpoint_problem(path, weights)
    if why:
        problem(("model", "weights"), why)


@dataclass(frozen=True)
class _Network:
    """The model, or a distilled student: where its keys are, what builds it and what it starts from."""

    where: Loc  # ("model",) or ("variants", NAME, "distill", "student")
    arch: str
    kwargs: dict[str, Any]
    weights: str | None
    line: int | None  # None: the line of its keys (a variant a template made has only the template's)


def _networks(spec: Spec) -> list[_Network]:
    found = [_Network(("model",), spec.model.arch, spec.model.kwargs, spec.model.weights, None)]
    for variant in spec.variants.values():
        line = None if ("variants", variant.name) in spec.lines else variant.line
        for step in variant.steps:
            if isinstance(step.params, DistillParams):
                student = step.params.student
                where = ("variants", variant.name, "distill", "student")
                found.append(_Network(where, student.arch, student.kwargs, student.weights, line))
    return found


def factory_problems(spec: Spec) -> list[tuple[int, str]]:
    """The factories of ``spec`` (model and students) that cannot be imported or do not take their kwargs:
    checked when pytest collects the spec, so a bad factory is one error, not one per item."""
    found: list[tuple[int, str]] = []

    def problem(loc: Loc, message: str, line: int | None = None) -> None:
        found.append((line or spec.lines.line(loc), f"{dotted(loc)}: {message}" if loc else message))

    for net in _networks(spec):
        if is_factory(net.arch):
            _check_factory(spec, net, problem)
    return found


def _check_factory(spec: Spec, net: _Network, problem: Callable[..., None]) -> None:
    try:
        factory = find_factory(net.arch, spec.path)
    except RobustgateError as err:
        problem(net.where + ("arch",), err.one_line(), net.line)
        return
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to compare the kwargs with
        return
    try:
        signature.bind(**net.kwargs)
    except TypeError as err:
        problem(net.where + ("kwargs",), f"{net.arch}{signature} does not take kwargs {net.kwargs}: {err}; "
                "give kwargs the factory's keyword arguments", net.line)


def _pretrained_missing(arch: str, weights: str) -> str | None:
    """Why torchvision's pretrained file for ``arch`` is not usable here (None: it is on this machine and reads as
    a checkpoint)."""
    from robustgate.models.pretrained import checkpoint_path, resolve

    try:
        entry = resolve(arch, weights)
    except RobustgateError as err:
        return err.one_line()
    path, fetch = checkpoint_path(entry), f"robustgate fetch-weights {arch.removeprefix('torchvision:')}"
    if not path.is_file():
        return (f"{type(entry).__name__}.{entry.name} for {arch} is not on this machine (expected {path}); run "
                f"`{fetch}` where there is network, or copy the file there")
    why = checkpoint_problem(path)
    return f"{why.split('; ')[0]}; delete it and run `{fetch}` again" if why else None

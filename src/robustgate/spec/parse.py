"""Reading a spec file: YAML → validated :class:`~robustgate.spec.model.Spec`, or one error listing every problem.

Every problem names ``file:line``, the key, what was expected and, for unknown
keys and names, the closest valid one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from robustgate.errors import RegistryError, SpecError
from robustgate.registry import Registry, did_you_mean
from robustgate.spec.fields import dataset_refs, model_refs
from robustgate.spec.cases import expand_cases
from robustgate.spec.factories import architecture_problem
from robustgate.spec.variant_templates import TemplateError, expand_template, is_template
from robustgate.spec.profiles import apply_profile
from robustgate.spec.model import (
    BASELINE, BudgetParams, Contract, DatasetEntry, ModelParams, SpecHeader, Spec, Step, Variant,
)
from robustgate.spec.yamlmarks import LineMap, Loc, load_yaml_with_lines

VERSION_KEY = "robustgate"
SUPPORTED_VERSIONS = (1,)
# Variant and dataset names appear in pytest ids (`spec.yaml::int8::accuracy[printed]`), so they must stay id-safe.
CONTRACT_LEVEL_KEYS = ("variants", "budget")  # beside a contract's kind (or inside it), not of the kind
ID_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def is_spec_file(path: Path) -> bool:
    """Whether ``path`` is a YAML file whose top level carries the ``robustgate:`` version key."""
    if path.suffix not in (".yaml", ".yml"):
        return False
    try:
        # bytes: a spec saved in another encoding is still a spec, and loading it says it is not UTF-8
        data = path.read_bytes()
    except OSError:
        return False
    # also after a byte-order mark, and as `- robustgate: 1` (a spec written as a list item: loading says what is wrong)
    key = rf"^(?:\xef\xbb\xbf)?(?:-[ \t]+)?{VERSION_KEY}\s*:".encode()
    return re.search(key, data, flags=re.MULTILINE) is not None


def load_spec(path: Path | str, profile: str | None = None) -> Spec:
    """Parse and validate a spec file without a ``matrix:`` (see :func:`load_cases` for one that may have it)."""
    specs = load_cases(path, profile)
    if len(specs) != 1 or specs[0].case is not None:
        raise ValueError(f"{path} has a matrix of {len(specs)} cases; read it with load_cases")
    return specs[0]


def load_cases(path: Path | str, profile: str | None = None) -> list[Spec]:
    """Parse and validate one spec file, with ``profile`` (see :mod:`robustgate.spec.profiles`) merged in
    where the spec has profiles: one spec, or one per case of its ``matrix:`` (see :mod:`robustgate.spec.cases`).
    Raises a single :class:`SpecError` naming every problem (of the first case that has any)."""
    path = Path(path)
    shown = _display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError(f"cannot read spec file: {err.strerror}", where=shown) from None
    except UnicodeDecodeError as err:
        line = err.object[: err.start].count(b"\n") + 1
        raise SpecError(
            f"not UTF-8 text (byte 0x{err.object[err.start]:02x})", where=f"{shown}:{line}", hint="save the spec as UTF-8"
        ) from None
    data, lines = load_yaml_with_lines(text, shown)
    if not isinstance(data, dict) or VERSION_KEY not in data:
        problem, hint = _top_level_problem(data)
        raise SpecError(f"not a robustgate spec: {problem}", where=f"{shown}:1", hint=hint)
    every_case = _case_names(data, lines)
    data, applied = apply_profile(data, lines, profile)
    cases = expand_cases(data, lines)
    if cases is None:
        return [dataclasses.replace(_SpecBuilder(path, data, lines).build(), profile=applied)]
    specs = []
    for case in cases:
        try:
            spec = _SpecBuilder(path, case.data, case.lines, every_case).build()
        except SpecError as err:
            # one message, not one per case: the first case that breaks, named (its values fill the placeholders)
            err.message += f"\n  (in matrix case {case.name}: {case.describe()})"
            raise
        specs.append(dataclasses.replace(spec, profile=applied, case=case.name))
    return specs


def _case_names(data: dict[str, Any], lines: LineMap) -> tuple[str, ...] | None:
    """Every case of the file's matrix as written, which a profile may narrow: what a ``CASE::MODEL`` reference
    may name (a case the run leaves out skips that item). None without a matrix, or when the matrix is broken
    (the run's own expansion reports that)."""
    try:
        cases = expand_cases(apply_profile(data, lines, None)[0], lines)
    except SpecError:
        return None
    return None if cases is None else tuple(case.name for case in cases)


def problems_error(shown: str, problems: list[tuple[int, str]]) -> SpecError:
    """One error for the ``(line, problem)`` pairs of the file shown as ``shown``: ``FILE:LINE: problem``, or
    ``N problems in FILE:`` and one such line each, in line order."""
    problems = sorted(problems, key=lambda p: p[0])
    if len(problems) == 1:
        line, message = problems[0]
        return SpecError(message, where=f"{shown}:{line}")
    listing = "\n".join(f"  {shown}:{line}: {message}" for line, message in problems)
    return SpecError(f"{len(problems)} problems in {shown}:\n{listing}")


def class_count_problems(spec: Spec, counted: Callable[[DatasetEntry], int | None]) -> list[tuple[int, str]]:
    """The class counts of ``spec`` checked as reading it checks them, with each dataset's count from ``counted``
    (``robustgate validate`` counts ImageFolder class folders on disk): ``(line, problem)`` pairs."""
    builder = _SpecBuilder(spec.path, {}, spec.lines)
    builder.check_class_counts(spec.model, spec.datasets, spec.variants, counted)
    return builder.problems


def _top_level_problem(data: Any) -> tuple[str, str]:
    """What the top level of a file that is no spec is, and how to make it one."""
    if data is None:
        return "the file is empty", "start it with `robustgate: 1`, then model:, datasets: and contracts:"
    if isinstance(data, list):
        return (
            "the top level is a list, but a spec is a mapping with a `robustgate: 1` key",
            "remove the `- ` before the first key and indent the keys below it to match",
        )
    if not isinstance(data, dict):
        return "the top level is a single value, but a spec is a mapping with a `robustgate: 1` key", \
            "write the spec as `key: value` lines, starting with `robustgate: 1`"
    return "the top level must be a mapping with a `robustgate: 1` key", "add `robustgate: 1` as the first line"


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _SpecBuilder:
    """Validates one parsed document, collecting every problem before raising."""

    def __init__(self, path: Path, data: dict[str, Any], lines: LineMap, case_names: tuple[str, ...] | None = None) -> None:
        self.path = path
        self.case_names = case_names  # the file's matrix cases, for CASE::MODEL references (None: no matrix)
        self.data = data
        self.lines = lines
        self.problems: list[tuple[int, str]] = []
        self.templates: dict[str, list[str]] = {}  # variant templates and the names they expanded to

    def problem(self, loc: Loc, message: str, line: int | None = None) -> None:
        """A problem at ``loc`` (its key path prefixes the message), on ``line`` or else the line of ``loc``."""
        self.problems.append((line or self.lines.line(loc), f"{dotted(loc)}: {message}" if loc else message))

    def build(self) -> Spec:
        # Registries fill on import of the modules that define the kinds.
        from robustgate.checks import contract_kinds
        from robustgate.compressors import compression_steps
        from robustgate.data.kinds import dataset_kinds

        version = self.data.get(VERSION_KEY)
        if type(version) is not int or version not in SUPPORTED_VERSIONS:  # `true == 1` must not pass
            self.problem(
                (VERSION_KEY,),
                f"unsupported spec version {self.data.get(VERSION_KEY)!r}; this robustgate reads version "
                + ", ".join(map(str, SUPPORTED_VERSIONS)),
            )
            self.raise_if_any()
        header = self.validate(SpecHeader, self.data, ())
        # Entries are validated even when the header is not, so one run lists every problem.
        datasets = self.build_datasets(_mapping(self.data.get("datasets")), dataset_kinds)
        variants = self.build_variants(_mapping(self.data.get("variants")), compression_steps)
        contracts = self.build_contracts(_sequence(self.data.get("contracts")), contract_kinds, variants)
        if header is not None:
            self.check_references(header, datasets, variants, contracts)
        self.raise_if_any()
        assert header is not None
        return Spec(
            path=self.path.resolve(),
            name=header.name or self.path.stem,
            seed=header.seed,
            device=header.device,
            confidence=header.confidence,
            model=header.model,
            datasets=datasets,
            variants=variants,
            contracts=tuple(contracts),
            lines=self.lines,
            budget=header.budget,
        )

    def raise_if_any(self) -> None:
        if self.problems:
            raise problems_error(self.lines.path, self.problems)

    def validate(self, model: type[BaseModel], value: Any, loc: Loc) -> Any:
        try:
            return model.model_validate(value if value is not None else {})
        except ValidationError as err:
            for error in err.errors(include_url=False):
                self.report_pydantic(model, loc, error)
            return None

    def report_pydantic(self, model: type[BaseModel], loc: Loc, error: Any) -> None:
        inner = tuple(error["loc"])
        full = loc + inner
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(inner[-1])
            allowed = _allowed_keys(model, inner[:-1])
            self.problem(full, f"unknown key '{key}'; {did_you_mean(key, allowed)}" if allowed else f"unknown key '{key}'")
        elif kind == "invalid_key":
            # `5:` or `~:` as a key: pydantic writes the key as text in `loc`, so name the key itself, at its line
            key, parent = error["input"], full[:-1]
            allowed = _allowed_keys(model, inner[:-1])
            message = f"unknown key {key!r}; {did_you_mean(key, allowed)}" if allowed else f"key {key!r} must be text"
            self.problem(parent, message, line=self.lines.line(parent + (key,)))
        elif kind == "missing":
            self.problem(full[:-1], f"missing required key '{inner[-1]}'")
        else:
            message = _PLAIN.get(kind) or error["msg"]
            if kind in ("too_short", "too_long"):
                bound = error["ctx"]["min_length" if kind == "too_short" else "max_length"]
                message = f"expected {'at least' if kind == 'too_short' else 'at most'} {bound} item{'s' * (bound != 1)}"
            message = message[0].lower() + message[1:]
            message = message.removeprefix("value error, ")
            value = error.get("input")
            named = isinstance(value, str) and repr(value) in message  # "unknown attack 'pgdd'" needs no (got 'pgdd')
            if (kind != "value_error" or not isinstance(value, dict)) and not named:
                message += f" (got {_shown(value)})"
            self.problem(full, message)

    def build_datasets(self, raw: dict[str, dict[str, Any]], kinds: Registry[Any]) -> dict[str, DatasetEntry]:
        entries = {}
        for name, body in raw.items():
            loc = ("datasets", str(name))
            if not isinstance(name, str):
                self.problem(loc, f"dataset names must be text; quote it: '{name}'")
                continue
            if not ID_SAFE_NAME.match(name):
                self.problem(loc, f"dataset name {name!r} may only use letters, digits and _ . + - (it becomes part of test ids)")
                continue
            if not isinstance(body, dict):
                self.problem(loc, "expected a mapping such as {builtin: digits, domain: printed}")
                continue
            present = [key for key in body if key in kinds]
            if len(present) != 1:
                self.problem(loc, self.source_key_problem(body, present, kinds))
                continue
            kind = present[0]
            params = self.validate(kinds.get(kind).Params, body, loc)
            if params is not None:
                entries[name] = DatasetEntry(name, kind, params, self.lines.line(loc))
        return entries

    @staticmethod
    def source_key_problem(body: dict[str, Any], present: list[str], kinds: Registry[Any]) -> str:
        from robustgate.data.kinds import DatasetParams

        if present:
            return f"a dataset takes one source key, but has {' and '.join(present)}"
        shared = set(DatasetParams.model_fields) | {"domain", "corruption", "severity"}
        stray = [key for key in body if key not in shared]
        guess = next((did_you_mean(key, kinds.names()) for key in stray if did_you_mean(key, kinds.names()).startswith("did")), None)
        if stray and guess:
            return f"unknown key '{stray[0]}'; {guess}"
        return f"a dataset needs one source key: {', '.join(kinds.names())}"

    def build_variants(self, raw: dict[str, dict[str, Any] | None], steps: Registry[Any]) -> dict[str, Variant]:
        variants = {}
        for name, body in raw.items():
            loc = ("variants", str(name))
            if not isinstance(name, str):
                self.problem(loc, f"variant names must be text; quote it: '{name}'")
                continue
            if not body:
                self.problem(loc, "a variant needs at least one compression step, e.g. `ptq: {backend: x86}`")
                continue
            if not isinstance(body, dict):
                self.problem(loc, "expected a mapping of compression steps, e.g. {ptq: {backend: x86}}")
                continue
            try:
                expanded = expand_template(name, body)
            except TemplateError as err:
                self.problem(loc, str(err))
                continue
            if is_template(name):
                self.templates[name] = [concrete for concrete, _ in expanded]
            for concrete, concrete_body in expanded:
                if concrete == BASELINE:
                    self.problem(loc, "`baseline` is the uncompressed model and is always there; name your variant differently")
                    continue
                if concrete in variants:
                    self.problem(loc, f"variant name {concrete!r} is taken by another variant; name this one differently")
                    continue
                if not ID_SAFE_NAME.match(concrete):
                    self.problem(loc, f"variant name {concrete!r} may only use letters, digits and _ . + - (it becomes part of test ids)")
                    continue
                variant = self.build_steps(concrete, concrete_body, loc, steps)
                if variant is not None:
                    variants[concrete] = variant
        return variants

    def build_steps(self, name: str, body: dict[str, Any], loc: Loc, steps: Registry[Any]) -> Variant | None:
        parsed = []
        for kind, params in body.items():
            try:
                step = steps.get(kind)
            except RegistryError as err:
                self.problem(loc + (kind,), err.message)
                continue
            if getattr(step, "source", False) and kind != next(iter(body)):
                self.problem(loc + (kind,), f"`{kind}:` loads the variant's model from a file, so it comes first: steps "
                             "before it would be thrown away (steps after it compress the loaded model)")
                continue
            value = self.validate(step.Params, params, loc + (kind,))
            if value is not None and step.runs_in_runtime(value) and kind != list(body)[-1]:
                self.problem(loc + (kind,), f"`{kind}:` gives a model that runs in an edge runtime, so it comes last: "
                             "robustgate's steps after it compress PyTorch networks (put them before it)")
                continue
            if value is not None:
                parsed.append(Step(kind, value))
        return Variant(name, tuple(parsed), self.lines.line(loc)) if len(parsed) == len(body) else None

    def build_contracts(
        self, raw: list[dict[str, Any]], kinds: Registry[Any], variants: dict[str, Variant]
    ) -> list[Contract]:
        contracts = []
        for index, body in enumerate(raw):
            loc: Loc = ("contracts", index)
            if not isinstance(body, dict):
                self.problem(loc, "each contract is one `kind: {...}` mapping, e.g. - accuracy: {on: test, min: 0.9}")
                continue
            restrict = body.get("variants")
            budget_raw = body.get("budget")
            present = [key for key in body if key not in CONTRACT_LEVEL_KEYS]
            stray = [key for key in present if key not in kinds]
            suggestion = did_you_mean(str(stray[0]), list(CONTRACT_LEVEL_KEYS)) if len(stray) == 1 else ""
            if len(present) == 2 and suggestion.startswith("did"):  # a kind plus a misspelt `variants:` or `budget:`
                self.problem(loc + (stray[0],), f"unknown key '{stray[0]}'; {suggestion}")
                continue
            if len(present) != 1:
                self.problem(loc, f"each contract is one `kind: {{...}}` mapping (kinds: {', '.join(kinds.names())})")
                continue
            kind = present[0]
            try:
                contract_kind = kinds.get(kind)
            except RegistryError as err:
                self.problem(loc + (kind,), err.message)
                continue
            if not isinstance(body[kind] or {}, dict):
                self.problem(loc + (kind,), f"expected a mapping of {kind} keys, e.g. {kind}: {{on: test, min: 0.9}}")
                continue
            params_raw = dict(body[kind] or {})
            if "variants" in params_raw:
                if restrict is not None:
                    self.problem(loc, "`variants:` is given twice, beside the contract and inside it; keep one")
                    continue
                restrict = params_raw.pop("variants")
            if "budget" in params_raw:
                if budget_raw is not None:
                    self.problem(loc, "`budget:` is given twice, beside the contract and inside it; keep one")
                    continue
                budget_raw = params_raw.pop("budget")
            regression_raw = params_raw.pop("max_regression", None)
            intent = params_raw.pop("seen_in_training", None)
            if intent is not None and intent != "intended":
                self.problem(loc + (kind, "seen_in_training"), f"seen_in_training takes one value, intended (not {intent!r}): "
                             "it says this contract evaluates images a model was trained or calibrated on, on purpose")
                continue
            params = self.validate(contract_kind.Params, params_raw, loc + (kind,))
            missing_gate = None if params is None or regression_raw is not None else contract_kind.missing_gate(kind, params)
            if missing_gate:  # a `max_regression:` gates the contract too, so it may have none of its kind's gates
                self.problem(loc + (kind,), missing_gate)
                params = None
            names = self.restriction(restrict, loc, variants)
            budget = None if budget_raw is None else self.validate(BudgetParams, budget_raw, loc + ("budget",))
            if params is None or names is False or (budget_raw is not None and budget is None):
                continue
            regression = self.regression_limits(regression_raw, contract_kind, params, loc + (kind, "max_regression"))
            if regression is False:
                continue
            fixed = contract_kind.models_for(params)
            if fixed is not None and names is not None and set(names) != set(fixed):
                self.problem(
                    loc + ("variants",),
                    f"this {kind} contract belongs to {' and '.join(fixed)}, as its keys say; `variants:` cannot "
                    "move it to other models: remove `variants:`",
                )
                continue
            if fixed is None and names and BASELINE in names and not contract_kind.applies_to_baseline(params) and not regression:
                self.problem(
                    loc,
                    f"this {kind} contract only has gates relative to the baseline, so it has nothing to check on "
                    "`baseline` itself; remove baseline from `variants:` or add an absolute gate such as `min:`",
                )
                continue
            contracts.append(
                Contract(kind, params, names, self.lines.line(loc), index, regression or None, budget, intent is not None)
            )
        return contracts

    def regression_limits(self, raw: Any, kind: Any, params: Any, loc: Loc) -> dict[str, float] | None | Literal[False]:
        """``max_regression: 0.01`` (the kind's headline metric) or ``{metric: amount}``; False after a problem."""
        from robustgate.checks import metric_direction

        if raw is None:
            return None
        if not isinstance(raw, dict):
            headline = kind.headline_metric(params)
            if headline is None:
                self.problem(loc, "name the metrics this contract may not get worse in, e.g. max_regression: {p90_ms: 0.5}")
                return False
            raw = {headline: raw}
        if not raw:
            self.problem(loc, "an empty mapping gates nothing; give metric: amount pairs, e.g. {accuracy: 0.01}")
            return False
        limits = {}
        for metric, amount in raw.items():
            if not isinstance(metric, str) or metric_direction(metric) is None:
                self.problem(
                    loc, f"'{metric}' is not a metric that can regress (counts, bounds and settings cannot); "
                    "name a quality such as accuracy, robust_accuracy, mean_corruption_accuracy, p90_ms or bytes",
                )
                return False
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < float("inf"):
                self.problem(loc + (metric,), f"expected how much worse {metric} may get, a number >= 0 in its own units")
                return False
            limits[metric] = float(amount)
        return limits

    def restriction(self, restrict: Any, loc: Loc, variants: dict[str, Variant]) -> tuple[str, ...] | None | Literal[False]:
        if restrict is None:
            return None
        if isinstance(restrict, str):
            restrict = [restrict]
        if not isinstance(restrict, list) or not all(isinstance(n, str) for n in restrict):
            self.problem(loc + ("variants",), "expected a list of variant names, e.g. variants: [int8]")
            return False
        declared = [str(name) for name in _mapping(self.data.get("variants"))]  # incl. ones that failed validation
        known = list(dict.fromkeys([BASELINE, *variants, *declared]))
        ok, names = True, []
        for name in restrict:
            if name not in known:
                self.problem(loc + ("variants",), f"unknown variant '{name}'; {did_you_mean(name, known)}")
                ok = False
            names += self.templates.get(name, [name])  # a variant template stands for all its variants
        return tuple(dict.fromkeys(names)) if ok else False

    def check_references(
        self, header: SpecHeader, datasets: dict[str, DatasetEntry], variants: dict[str, Variant], contracts: list[Contract]
    ) -> None:
        names = [str(name) for name in header.datasets]
        refs: list[tuple[Loc, str]] = [(("model",) + loc, ref) for loc, ref in dataset_refs(header.model)]
        for entry in datasets.values():
            refs += [(("datasets", entry.name) + loc, ref) for loc, ref in dataset_refs(entry.params)]
        for variant in variants.values():
            for step in variant.steps:
                refs += [(("variants", variant.name, step.kind) + loc, ref) for loc, ref in dataset_refs(step.params)]
        for contract in contracts:
            refs += [(("contracts", contract.index, contract.kind) + loc, ref) for loc, ref in dataset_refs(contract.params)]
        for loc, ref in refs:
            if ref not in names:
                self.problem(loc, f"unknown dataset '{ref}'; {did_you_mean(ref, names)}")
        models = list(dict.fromkeys([BASELINE, *variants, *(str(name) for name in _mapping(self.data.get("variants")))]))
        for contract in contracts:
            for loc, ref in model_refs(contract.params):
                self.check_model_ref(("contracts", contract.index, contract.kind) + loc, ref, models)
        self.check_derivation_cycles(datasets)
        self.check_class_counts(header.model, datasets, variants)
        problem = architecture_problem(header.model.arch)
        if problem:
            self.problem(("model", "arch"), problem)

    def check_model_ref(self, loc: Loc, ref: str, models: list[str]) -> None:
        """A model of this spec, or ``CASE::MODEL`` naming a case of its matrix (that case's models are checked
        when the item runs: a matrix value may rename them)."""
        case, separator, model = ref.rpartition("::")
        if not separator:
            if ref not in models:
                self.problem(loc, f"unknown model '{ref}'; {did_you_mean(ref, models)}")
        elif self.case_names is None:
            self.problem(loc, f"'{ref}' names a matrix case, but this spec has no matrix; name one of its models")
        elif case not in self.case_names:
            self.problem(loc, f"'{case}' is not a case of this spec; {did_you_mean(case, list(self.case_names))} "
                              "(write CASE::MODEL)")

    def check_derivation_cycles(self, datasets: dict[str, DatasetEntry]) -> None:
        parents = {name: getattr(e.params, "from_", None) for name, e in datasets.items()}
        for start in parents:
            chain, name = [start], parents[start]
            while name is not None and name in parents:
                if name in chain:
                    members = chain[chain.index(name):]
                    if start == min(members):  # report each cycle once, at its first member by name
                        cycle = " → ".join(members + [name])
                        self.problem(("datasets", start, "from"), f"datasets derive from each other in a cycle: {cycle}")
                    break
                chain.append(name)
                name = parents[name]

    def check_class_counts(
        self, model_params: ModelParams, datasets: dict[str, DatasetEntry], variants: dict[str, Variant],
        counted: Callable[[DatasetEntry], int | None] | None = None,
    ) -> None:
        """A torchvision network built with ``num_classes`` outputs that many logits: refuse a count other than that
        of a dataset whose classes are known (the digits: 10, Office-31: 31; with ``counted``, also what is on disk),
        datasets whose counts differ where the model's is not declared, and a distilled student whose count
        differs from the model's. Each would otherwise fail on its first batch, after the training before it."""
        from robustgate.compressors.distill import DistillParams  # the steps register when specs are validated
        fixed = {name: count for name in datasets if (count := _known_classes(name, datasets, counted)) is not None}
        model = self.declared_classes(model_params.arch, model_params.kwargs, ("model", "kwargs", "num_classes"))
        wrong = next((name for name, count in fixed.items() if model not in (None, count)), None)
        if wrong is not None:
            count = fixed[wrong]
            self.problem(("model", "kwargs", "num_classes"),
                         f"the model outputs {model} classes, but dataset '{wrong}' has {count}; set num_classes: {count}")
            return
        first = next(iter(fixed), None)
        other = next((name for name, count in fixed.items() if model is None and first is not None and count != fixed[first]), None)
        if first is not None and other is not None:
            self.problem(("datasets", other), f"dataset '{other}' has {fixed[other]} classes, but '{first}' has "
                         f"{fixed[first]}; a model outputs one set of classes: give every dataset the same classes")
            return
        teacher = model if model is not None else (fixed[first] if first is not None else None)
        for variant in variants.values():
            for step in variant.steps:
                if not isinstance(step.params, DistillParams) or teacher is None:
                    continue
                loc: Loc = ("variants", variant.name, "distill", "student", "kwargs", "num_classes")
                # a variant a template expanded to has no line of its own: the template's
                line = None if ("variants", variant.name) in self.lines else variant.line
                student = self.declared_classes(step.params.student.arch, step.params.student.kwargs, loc, line)
                if student not in (None, teacher):
                    self.problem(loc, f"the student outputs {student} classes but the model it learns from outputs "
                                 f"{teacher}; set num_classes: {teacher}", line=line)

    def declared_classes(self, arch: str, kwargs: dict[str, Any], loc: Loc, line: int | None = None) -> int | None:
        """The ``num_classes`` a torchvision architecture is built with; None where it is not given or not valid
        (reported), and for a user factory, whose keyword arguments mean what its author made them mean."""
        prefix, _, _ = arch.rpartition(":")
        if prefix not in ("", "torchvision") or "num_classes" not in kwargs:
            return None
        count = kwargs["num_classes"]
        if type(count) is not int or count < 1:
            self.problem(loc, f"expected a whole number of classes, at least 1 (got {_shown(count)})", line=line)
            return None
        return count


def _known_classes(
    name: str, datasets: dict[str, DatasetEntry], counted: Callable[[DatasetEntry], int | None] | None = None
) -> int | None:
    """The class count of a dataset, or of the one it derives from, where its kind knows it before loading
    (or ``counted`` tells it)."""
    from robustgate.data.kinds import dataset_kinds

    seen: set[str] = set()
    while name in datasets and name not in seen:  # a `from:` cycle is reported elsewhere
        seen.add(name)
        entry = datasets[name]
        parent = getattr(entry.params, "from_", None)
        if parent is None:
            return counted(entry) if counted is not None else dataset_kinds.get(entry.kind).class_count(entry.params)
        name = parent
    return None


# pydantic's wording where it speaks of Python types rather than of what a YAML file holds
_PLAIN = {
    "dict_type": "expected a mapping (key: value lines or {key: value})",
    "model_type": "expected a mapping (key: value lines or {key: value})",
    "tuple_type": "expected a list",
}


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut short: the message names the key and line, so a long value need not be repeated whole."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dotted(loc: Loc) -> str:
    """``("contracts", 0, "accuracy", "min")`` as it reads in messages: ``contracts[0].accuracy.min``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the model accepts at ``loc`` (for "did you mean"); empty when it can't tell."""
    target: Any = model
    for part in loc:
        target = _unwrap(target)
        if isinstance(target, type) and issubclass(target, BaseModel):
            fields = {f.alias or n: f for n, f in target.model_fields.items()}
            if part not in fields:
                return []
            target = fields[part].annotation
        elif get_origin(target) in (dict, list, tuple):
            target = get_args(target)[-1 if get_origin(target) is dict else 0]
        else:
            return []
    target = _unwrap(target)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return [f.alias or n for n, f in target.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → ``X`` (the first model type in a union)."""
    args = get_args(annotation)
    if args and get_origin(annotation) not in (dict, list, tuple):
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if models:
            return models[0]
    return annotation

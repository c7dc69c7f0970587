"""The JSON Schema (draft 2020-12) of spec files, for editors: ``robustgate schema > robustgate-spec.schema.json``.

It is generated from the same pydantic models the parser validates with: the header (:class:`SpecHeader`), one
entry per registered dataset kind, compression step and contract kind, so a kind registered by a new module
appears in it. A schema checks structure (keys, types, ranges, the values of a closed set) and completes keys in
an editor; what needs more than one value at a time stays with the parser and ``robustgate validate``: references
between entries (``on: printed`` names a dataset), ``from:`` cycles, class counts, a gate that must be given,
strengths as fractions (``8/255`` is checked as text of the right shape, not as a number in range). Specs with a
``matrix:`` put ``{placeholders}`` where values go, so a string with a placeholder in it is accepted for any value
(``"{source.targets}"`` may stand for a list, ``"torchvision:{arch}"`` for a name); a variant template (``pruned-{ratio}``) has its steps' keys checked but not their values (lists there
become one variant per value), and ``profiles:`` hold partial specs whose keys are checked but not their values.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from robustgate.spec.cases import EXCLUDE_KEY, MATRIX_KEY
from robustgate.spec.model import BASELINE, BudgetParams, SpecHeader
from robustgate.spec.parse import ID_SAFE_NAME, SUPPORTED_VERSIONS, VERSION_KEY
from robustgate.spec.profiles import PROFILES_KEY

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# cases.PLACEHOLDER: `{key}` or `{key.field}`, not `${VARIABLE}`
PLACEHOLDER = {"type": "string", "pattern": r"(^|[^$])\{[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\}",
               "description": "text with a matrix placeholder, filled by each case"}
# Dataset and variant names become part of test ids (ID_SAFE_NAME), or are templates filled per case or value.
_NAME = {"type": "string", "pattern": ID_SAFE_NAME.pattern.replace("[A-Za-z0-9]", r"[A-Za-z0-9{]", 1).replace("+-]", "+{}-]")}
_SHOWN = ("title", "description", "default")  # kept beside a value's alternatives, for an editor's hover text


def spec_json_schema() -> dict[str, Any]:
    """The schema of a spec file, with every registered dataset kind, compression step and contract kind."""
    from robustgate.checks import contract_kinds
    from robustgate.compressors import compression_steps
    from robustgate.data.kinds import dataset_kinds

    datasets = {name: dataset_kinds.get(name).Params for name in dataset_kinds}
    steps = {name: compression_steps.get(name).Params for name in compression_steps}
    contracts = {name: contract_kinds.get(name).Params for name in contract_kinds}
    models: list[type[BaseModel]] = [SpecHeader, BudgetParams, *datasets.values(), *steps.values(), *contracts.values()]
    refs, generated = models_json_schema([(model, "validation") for model in dict.fromkeys(models)],
                                         ref_template="#/$defs/{model}")
    defs: dict[str, Any] = generated["$defs"]

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return refs[(model, "validation")]

    header = defs.pop(SpecHeader.__name__)
    properties = header["properties"]
    properties[VERSION_KEY] = {"enum": list(SUPPORTED_VERSIONS), "description": "the spec format version; marks the file as a spec"}
    properties["datasets"] = {
        "type": "object", "description": "named image sets: one source key each (" + ", ".join(datasets) + ")",
        "propertyNames": _NAME,
        "additionalProperties": {"anyOf": [ref(params) for params in datasets.values()]},
    }
    properties["variants"] = {
        "type": ["object", "null"], "description": "compressed candidates, each one or more steps applied in order",
        "propertyNames": {**_NAME, "not": {"const": BASELINE}},
        "patternProperties": {r"\{": _loose_steps(steps, defs, ref)},  # templates: lists expand into variants
        "additionalProperties": {
            "type": "object", "minProperties": 1, "additionalProperties": False,
            "properties": {name: {"anyOf": [ref(params), {"type": "null"}, *_short_form(params)]} for name, params in steps.items()},
        },
    }
    properties["contracts"] = {
        "type": "array", "minItems": 1, "description": "what must hold: one `kind: {...}` mapping each",
        "items": {"anyOf": [_contract(name, params, defs, ref) for name, params in contracts.items()]},
    }
    properties[MATRIX_KEY] = _matrix()
    properties[PROFILES_KEY] = {
        "type": "object", "description": "named partial specs merged over this one when selected (--robustgate-profile)",
        "additionalProperties": {"type": "object", "propertyNames": {"enum": [
            key for key in properties if key not in (VERSION_KEY, PROFILES_KEY)]}},
    }
    for definition in defs.values():
        _accept_placeholders(definition)
    _accept_placeholders(header)
    defs["Placeholder"] = PLACEHOLDER
    return {
        "$schema": DRAFT,
        "title": "robustgate spec",
        "description": "A robustgate spec file (robustness contracts for compressed image classifiers). Generated by "
                       "`robustgate schema`; `robustgate validate` checks what a schema cannot.",
        **{key: value for key, value in header.items() if key not in ("title", "description")},
        "$defs": defs,
    }


def _contract(name: str, params: type[BaseModel], defs: dict[str, Any], ref: Any) -> dict[str, Any]:
    """``{KIND: {...}}`` beside an optional ``variants:``/``budget:``, which may also sit inside, with the keys
    every contract takes (``max_regression``, ``seen_in_training``)."""
    body = copy.deepcopy(defs[ref(params)["$ref"].rsplit("/", 1)[1]])
    shared = _contract_level(ref)
    body.setdefault("properties", {}).update(shared)
    body["properties"]["max_regression"] = {
        "description": "how much worse than the previous release a metric may get: an amount (the headline "
                       "metric) or {metric: amount}",
        "anyOf": [{"type": "number", "minimum": 0}, {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}}],
    }
    body["properties"]["seen_in_training"] = {
        "const": "intended", "description": "this contract evaluates images a model was trained or calibrated on, on purpose"}
    defs[f"{params.__name__}InContract"] = body
    return {
        "type": "object", "required": [name], "additionalProperties": False,
        "properties": {name: {"anyOf": [{"$ref": f"#/$defs/{params.__name__}InContract"}, {"type": "null"}]}, **shared},
    }


def _contract_level(ref: Any) -> dict[str, Any]:
    """The keys beside a contract's kind (or inside it)."""
    return {
        "variants": {"description": "the models this contract applies to (baseline, variant names)",
                     "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "budget": ref(BudgetParams),
    }


def _short_form(params: type[BaseModel]) -> list[dict[str, Any]]:
    """A step written as a bare string (``artifact: models/own.pt``), where its Params accept one."""
    described = getattr(params, "SHORT_FORM", None)
    return [{"type": "string", "description": described}] if described else []


def _loose_steps(steps: Mapping[str, type[BaseModel]], defs: dict[str, Any], ref: Any) -> dict[str, Any]:
    """A variant template's steps: known steps with known keys, any values."""
    def keys(params: type[BaseModel]) -> list[str]:
        return list(defs[ref(params)["$ref"].rsplit("/", 1)[1]].get("properties", {}))

    return {
        "type": "object", "minProperties": 1, "additionalProperties": False,
        "properties": {name: {"type": ["object", "null"], "propertyNames": {"enum": keys(params)}}
                       for name, params in steps.items()},
    }


def _matrix() -> dict[str, Any]:
    scalar = {"type": ["string", "number", "boolean"]}
    named = {"type": "object", "required": ["name"], "properties": {"name": scalar}}
    return {
        "type": "object", "description": "one spec, a grid of cases: key -> values; {key} in the spec stands for each value",
        "properties": {EXCLUDE_KEY: {"type": "array", "items": {"type": "object"},
                                     "description": "combinations to leave out, e.g. [{arch: resnet50, source: webcam}]"}},
        "additionalProperties": {"type": "array", "minItems": 1, "items": {"anyOf": [scalar, named]}},
    }


def _accept_placeholders(schema: dict[str, Any]) -> None:
    """Let every value under ``schema``'s properties and items be a whole ``{placeholder}`` string, too."""
    for key in ("properties", "patternProperties"):
        for name, value in schema.get(key, {}).items():
            schema[key][name] = _or_placeholder(value)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = _or_placeholder(schema[key])
    if "prefixItems" in schema:
        schema["prefixItems"] = [_or_placeholder(item) for item in schema["prefixItems"]]


def _or_placeholder(value: dict[str, Any]) -> dict[str, Any]:
    _accept_placeholders(value)
    for alternatives in ("anyOf", "oneOf"):
        for option in value.get(alternatives, []):
            _accept_placeholders(option)
    shown = {key: value[key] for key in _SHOWN if key in value}
    rest = {key: item for key, item in value.items() if key not in _SHOWN}
    return {**shown, "anyOf": [rest, {"$ref": "#/$defs/Placeholder"}]}

"""``results.json``: every robustgate item of a run, in a versioned, published schema.

Each item is an :class:`~robustgate.reports.record.ItemRecord` in its results form, built from pytest
reports (not items), so results from pytest-xdist workers arrive too. A run
that is interrupted or whose contracts error still writes one: the items that ran are in it,
with ``outcome`` saying how each ended, and ``not_run`` lists the collected contracts that never
reported (interrupted, ``-x``, ``--maxfail``).

Reports read structure from the record, never from an item's label: ``spec``, ``case``, ``model``,
``kind`` (accuracy, attack, corruptions, shift, latency, size) and ``datasets`` (the datasets the
contract reads, in the order its keys name them: a shift's source, then its targets), and ``axes``:
where each ``@`` breakdown of its metrics lies (an attack sweep's ``robust_accuracy@8/255`` at strength
8/255, a corruption grid's ``accuracy@fog/3`` at fog, severity 3).

Version history (``schema_version``):

- 1: the first release.
- 2: items gain the required ``kind`` and ``datasets``; the document gains ``not_run``. A version-1
  document is still read (``robustgate report``, ``merge``, ``--robustgate-baseline``): ``upgraded``
  derives ``kind`` from the item's label and ``datasets`` from version 1's label grammar
  (``accuracy[on]``, ``attack[kind@on]``, ``corruptions[suite@on]``, ``shift[source->...]`` with the
  targets from its ``accuracy@TARGET`` metrics), leaving ``datasets`` empty where it cannot.
  Items gained the optional ``axes`` later in version 2; ``upgraded`` gives an item written without it
  the axes the metric names of those releases spelled (``robust_accuracy@STRENGTH`` of an attack,
  ``accuracy@CORRUPTION/SEVERITY`` of a corruptions item).
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
from pathlib import Path
from typing import Any

from robustgate.reports.record import ItemRecord

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # documents this robustgate reads: older ones are upgraded (see ``upgraded``)

_NUMBER = {"type": ["number", "null"]}  # non-finite numbers are written as null
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://robustgate.dev/schemas/results-2.json",
    "title": "robustgate results",
    "type": "object",
    "required": ["schema_version", "exit_status", "environment", "specs", "items", "timings"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "exit_status": {"type": "integer"},
        "interrupted": {"type": "boolean"},
        # contracts collected (after -k, -m and --robustgate-shard) that never reported: interrupted, -x, --maxfail
        "not_run": {"type": "array", "items": {"type": "string"}},
        "baseline": {  # the previous release compared with (--robustgate-baseline)
            "type": "object",
            "required": ["path", "sha256"],
            "properties": {"path": {"type": "string"}, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
        },
        "shard": {  # this run was part I of N (--robustgate-shard I/N)
            "type": "object",
            "required": ["index", "count"],
            "properties": {"index": {"type": "integer", "minimum": 1}, "count": {"type": "integer", "minimum": 1}},
        },
        "shards": {  # a merge of shards: how many the run had, and which were merged
            "type": "object",
            "required": ["count", "merged"],
            "properties": {"count": {"type": "integer", "minimum": 1},
                           "merged": {"type": "array", "items": {"type": "integer", "minimum": 1}}},
        },
        "per_image": {  # only in files written by --robustgate-save-baseline: nodeid -> metric -> outcomes
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["images", "n", "correct"],
                    "properties": {"images": {"type": "string"}, "n": {"type": "integer", "minimum": 1},
                                   "correct": {"type": "string", "contentEncoding": "base64"}},
                },
            },
        },
        "environment": {
            "type": "object",
            "required": ["python", "platform", "cpu", "torch", "torchvision", "quantized_engine", "robustgate"],
            "additionalProperties": {"type": ["string", "integer"]},
        },
        "specs": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["name", "sha256"],
                "properties": {"name": {"type": "string"}, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                               "profile": {"type": "string"},
                               # the weights file this spec unpickled with `trusted: true` (code could run)
                               "trusted": {"type": "string"},
                               # every file or folder the spec read: `model.weights`, `datasets.NAME.imagefolder` ...
                               "paths": {"type": "object", "additionalProperties": {"type": "string"}}},
            },
        },
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["nodeid", "spec", "model", "kind", "datasets", "contract", "outcome", "duration", "metrics",
                             "gates"],
                "additionalProperties": False,
                "properties": {
                    "nodeid": {"type": "string"},
                    "spec": {"type": "string"},
                    "model": {"type": "string"},
                    "case": {"type": "string"},
                    "kind": {"type": "string"},  # the contract's kind: accuracy, attack, corruptions, shift, latency, size
                    "datasets": {"type": "array", "items": {"type": "string"}},  # the datasets it reads, as its keys name them
                    "contract": {"type": "string"},  # the item's label: for people, never parsed
                    "outcome": {"enum": ["passed", "failed", "error", "skipped"]},
                    "duration": {"type": "number", "minimum": 0},
                    "metrics": {"type": "object", "additionalProperties": _NUMBER},
                    "gates": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["metric", "op", "threshold", "estimate", "value", "read", "passed"],
                            "additionalProperties": False,
                            "properties": {
                                "metric": {"type": "string"},
                                "op": {"enum": [">=", "<=", ">"]},
                                "threshold": _NUMBER,
                                "estimate": _NUMBER,
                                "value": _NUMBER,
                                "read": {"type": "string"},
                                "passed": {"type": "boolean"},
                            },
                        },
                    },
                    "findings": {"type": "array", "items": {"type": "string"}},
                    "notes": {"type": "array", "items": {"type": "string"}},
                    "caveats": {"type": "array", "items": {"type": "string"}},
                    "message": {"type": "string"},
                    "technique": {"type": "string"},
                    "settings": {"type": "string"},
                    "previous": {"type": "object", "additionalProperties": _NUMBER},
                    "phases": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
                    "series": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "number"}}},
                    # "@" suffix of metric names -> where it was measured, e.g. "8/255" -> {"strength": 0.0314}
                    "axes": {"type": "object", "additionalProperties": {
                        "type": "object", "additionalProperties": {"type": ["number", "string"]}}},
                },
            },
        },
        "timings": {
            "type": "object",
            "required": ["total_seconds"],
            "additionalProperties": {"type": "number", "minimum": 0},
        },
    },
}


def trusted_weights(doc: dict[str, Any]) -> list[str]:
    """``"spec: weights file"`` for every spec that loaded its weights with ``trusted: true`` (a pickle may run code)."""
    return [f"{key}: {entry['trusted']}" for key, entry in doc["specs"].items() if entry.get("trusted")]


def model_label(item: dict[str, Any]) -> str:
    """How reports name an item's model: ``int8``, or ``resnet50-amazon::int8`` in a matrix case (as its id reads)."""
    return f"{item['case']}::{item['model']}" if item.get("case") else item["model"]


def spec_digest(path: Path, profile: str | None = None) -> str:
    """The spec file's SHA-256; with a profile, of the file and the profile's name (another profile is another run)."""
    content = path.read_bytes()
    return hashlib.sha256(content if profile is None else content + b"\0profile=" + profile.encode()).hexdigest()


def environment() -> dict[str, str | int]:
    import torch
    import torchvision

    import robustgate
    from robustgate.latency.machine import cpu_model

    found = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "quantized_engine": torch.backends.quantized.engine,
        "robustgate": robustgate.__version__,
    }
    return found | optional_versions()


OPTIONAL_LIBRARIES = ("onnxruntime", "executorch", "timm")  # the extras' runtimes and models, where installed


def optional_versions() -> dict[str, str]:
    """The installed versions of the optional extras' libraries: an artifact's numbers are its runtime's kernels."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for library in OPTIONAL_LIBRARIES:
        try:
            found[library] = version(library)
        except PackageNotFoundError:
            continue
    return found


def document(records: list[ItemRecord], specs: dict[str, dict[str, str]], exit_status: int, interrupted: bool,
             timings: dict[str, float], not_run: list[str] | None = None) -> dict[str, Any]:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "exit_status": int(exit_status),
        "interrupted": interrupted,
        "environment": environment(),
        "specs": specs,
        "items": [record.results_item() for record in records],
        "timings": timings,
    }
    if not_run:
        doc["not_run"] = list(not_run)
    return doc


def upgraded(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` in this version's shape (a copy; ``doc`` itself when it already is): version-1 items gain ``kind``
    and ``datasets``, items written before ``axes`` gain theirs (see the module's version history); anything else
    is left as it was."""
    items = doc.get("items")
    if doc.get("schema_version") not in READABLE_VERSIONS or not isinstance(items, list):
        return doc
    if doc["schema_version"] == SCHEMA_VERSION and all(_current(item) for item in items):
        return doc
    return {**doc, "schema_version": SCHEMA_VERSION, "items": [upgraded_item(item) for item in items]}


def _current(item: Any) -> bool:
    """Whether an item has this version's fields (a damaged one is left for the reader to refuse)."""
    if not isinstance(item, dict) or not isinstance(item.get("contract"), str):
        return True
    return all(key in item for key in ("kind", "datasets", "axes"))


def upgraded_item(item: Any) -> Any:
    """One item of a results document in this version's shape (a copy; ``item`` itself when it already is)."""
    if _current(item):
        return item
    upgraded = {**item, "kind": item.get("kind", _v1_kind(item)), "datasets": item.get("datasets", _v1_datasets(item))}
    upgraded.setdefault("axes", _spelled_axes(upgraded))
    return upgraded


_GRID_CELL = re.compile(r"accuracy@(\w+)/(\d+)")  # a corruptions item's accuracy@fog/3, before axes


def _spelled_axes(item: dict[str, Any]) -> dict[str, dict[str, float | str]]:
    """The axes that metric names spelled before items carried them (a fixed grammar: newer names are never
    parsed): an attack sweep's ``robust_accuracy@8/255``, a corruptions item's ``accuracy@fog/3``."""
    metrics = item.get("metrics")
    axes: dict[str, dict[str, float | str]] = {}
    for key in metrics if isinstance(metrics, dict) else {}:
        if item["kind"] == "attack" and key.startswith("robust_accuracy@"):
            at = key.partition("@")[2]
            axes[at] = {"strength": _strength(at)}
        elif item["kind"] == "corruptions" and (cell := _GRID_CELL.fullmatch(key)):
            axes[f"{cell[1]}/{cell[2]}"] = {"corruption": cell[1], "severity": int(cell[2])}
    return axes


def _strength(text: str) -> float:
    """``8/255`` or ``0.05``, as attack strengths were written into metric names."""
    number, _, denominator = text.partition("/")
    return float(number) / float(denominator) if denominator else float(number)


def _v1_kind(item: dict[str, Any]) -> str:
    """Version 1 labels start with the kind: ``accuracy[printed]``, ``size#2``, ``latency[batch8]``."""
    return re.match(r"[a-z_]*", item["contract"]).group()  # type: ignore[union-attr]


def _v1_datasets(item: dict[str, Any]) -> list[str]:
    """The datasets a version-1 label names (its grammar is fixed: newer labels are never parsed)."""
    inside = re.fullmatch(r"[a-z_]+\[(.*?)(#\d+)?\]", item["contract"])
    if inside is None:
        return []
    kind, params = _v1_kind(item), inside.group(1)
    if kind == "accuracy":
        return [params]
    if kind in ("attack", "corruptions") and "@" in params:
        return [params.split("@", 1)[1]]
    if kind == "shift" and "->" in params:
        targets = [key.removeprefix("accuracy@") for key in item.get("metrics") or {} if key.startswith("accuracy@")]
        return [params.split("->", 1)[0], *targets]
    return []


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)

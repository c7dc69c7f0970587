"""The previous release, and the ``max_regression`` gates that compare this run with it.

``--robustgate-save-baseline PATH`` writes the run's results document plus, per item, which images
each accuracy-like metric got right (bit-packed), so the next release can be compared image by image.
``--robustgate-baseline PREV.json`` reads such a file, or a plain ``results.json`` (then comparisons
use point estimates and independent proportions only). Items are matched by their pytest node id.
(The flags say "baseline" for the previous release; in the code "baseline" is only the fp32 model.)
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import robustgate.checks  # noqa: F401 (registers the contract kinds, whose declarations say each metric's direction)
from robustgate.checks.base import metric_direction
from robustgate.checks.outcome import Outcome
from robustgate.checks.regression import PerImage, Previous, add_regression_gates
from robustgate.errors import RobustgateError
from robustgate.reports.results import READABLE_VERSIONS, SCHEMA_VERSION


@dataclass(frozen=True)
class PreviousRelease:
    """A previous release's results (``--robustgate-baseline``), by item."""

    path: Path
    sha256: str
    items: dict[str, dict[str, Any]]  # nodeid -> item of the previous results document
    per_image: dict[str, dict[str, PerImage]]  # nodeid -> metric -> which images it got right
    cpu: str | None

    @classmethod
    def load(cls, path: Path) -> "PreviousRelease":
        fix = "pass a results.json or a file written by --robustgate-save-baseline"
        try:
            raw = path.read_bytes()
            doc = json.loads(raw)
        except OSError as err:
            raise RobustgateError(f"cannot read the baseline: {err.strerror or err}; {fix}", where=str(path)) from None
        except ValueError as err:
            raise RobustgateError(f"the baseline is not JSON ({err}); {fix}", where=str(path)) from None
        if not isinstance(doc, dict) or doc.get("schema_version") not in READABLE_VERSIONS:  # older ones: same items
            found = doc.get("schema_version") if isinstance(doc, dict) else None
            raise RobustgateError(
                f"the baseline has results schema version {found!r}; this robustgate reads version {SCHEMA_VERSION}; {fix}",
                where=str(path),
            )
        try:
            items = _items(doc.get("items"))
            per_image = _per_image(doc.get("per_image") or {})
        except (TypeError, ValueError, KeyError) as err:
            raise RobustgateError(f"the baseline is damaged: {err}; {fix}", where=str(path)) from None
        cpu = (doc.get("environment") or {}).get("cpu") if isinstance(doc.get("environment"), dict) else None
        return cls(path, hashlib.sha256(raw).hexdigest(), items, per_image, str(cpu) if cpu else None)

    def previous(self, nodeid: str) -> Previous | None:
        item = self.items.get(nodeid)
        if item is None:
            return None
        return Previous(dict(item["metrics"]), dict(self.per_image.get(nodeid, {})),
                        f"the baseline {self.path.name} ({item.get('outcome')})", item.get("settings"), self.cpu)

    def has_spec(self, spec: str) -> bool:
        return any(nodeid.split("::")[0] == spec for nodeid in self.items)

    def specs(self) -> list[str]:
        return sorted({nodeid.split("::")[0] for nodeid in self.items})

    def compared(self, nodeid: str, metrics: Iterable[str]) -> dict[str, float | None]:
        """The previous release's values of these quality metrics of the item (for the report's comparison)."""
        before = self.items.get(nodeid, {}).get("metrics", {})
        return {m: before[m] for m in metrics if m in before and metric_direction(m) is not None}

    def describe(self) -> dict[str, str]:
        return {"path": str(self.path), "sha256": self.sha256}


def read_regression_gates(outcome: Outcome, limits: dict[str, float], release: PreviousRelease | None, nodeid: str,
                          settings: str, confidence: float | str) -> list[str]:
    """The ``max_regression`` gates of item ``nodeid`` against ``release``, added to ``outcome``; returns why limits
    were not read (also noted on the outcome): no release given, no result of this item in it, or the contract's
    ``settings`` digest changed since. Raises :class:`RobustgateError` when the release holds no item of the spec
    at all (a moved spec or another rootdir, not a new contract), or a limit names what the contract does not
    measure."""
    from robustgate.latency.machine import cpu_model  # imports torch: only when a gate is read

    previous = release.previous(nodeid) if release is not None else None
    spec = nodeid.split("::")[0]
    if release is None:
        why = "no --robustgate-baseline PREV.json was given"
    elif previous is None and not release.has_spec(spec):
        raise RobustgateError(
            f"the baseline {release.path} holds no results of {spec} (it has: {', '.join(release.specs()) or 'none'}), "
            "so no max_regression gate of this spec can be read",
            hint="run pytest from the rootdir the baseline was saved in, or save a new baseline after moving a spec",
        )
    elif previous is None:
        why = f"the baseline {release.path.name} has no result for this item (a new contract?)"
    elif previous.settings and previous.settings != settings:
        why = (f"the contract's settings changed since the baseline {release.path.name}, so its numbers measure "
               "something else; save a new baseline")
    else:
        return add_regression_gates(outcome, limits, previous, confidence, cpu_model())
    outcome.notes.append(f"max_regression not read: {why}")
    return [why]


def _items(raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, list):
        raise TypeError("'items' is not a list")
    items = {}
    for k, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("nodeid"), str):
            raise TypeError(f"items[{k}] has no 'nodeid' string")
        metrics = item.get("metrics", {})
        if not isinstance(metrics, dict) or not all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in metrics.values()
        ):
            raise TypeError(f"the metrics of {item['nodeid']} are not all numbers")
        items[item["nodeid"]] = {**item, "metrics": metrics}
    return items


def _per_image(raw: Any) -> dict[str, dict[str, PerImage]]:
    if not isinstance(raw, dict):
        raise TypeError("'per_image' is not a mapping of item ids")
    loaded: dict[str, dict[str, PerImage]] = {}
    for nodeid, metrics in raw.items():
        if not isinstance(metrics, dict):
            raise TypeError(f"per_image of {nodeid} is not a mapping of metrics")
        for metric, data in metrics.items():
            try:
                loaded.setdefault(nodeid, {})[metric] = PerImage.from_json(data)
            except (TypeError, ValueError, KeyError, binascii.Error) as err:
                raise ValueError(f"per_image of {nodeid}, {metric}: {err}") from None
    return loaded

"""Baselines across releases.

``--robustgate-save-baseline PATH`` writes the run's results document plus, per item, which images
each accuracy-like metric got right (bit-packed), so the next release can be compared image by image.
``--robustgate-baseline PREV.json`` reads such a file, or a plain ``results.json`` (then comparisons
use point estimates and independent proportions only). Items are matched by their pytest node id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustgate.checks.regression import PerImage, Previous, higher_is_better
from robustgate.errors import RobustgateError
from robustgate.reports.results import SCHEMA_VERSION


@dataclass(frozen=True)
class BaselineRelease:
    path: Path
    sha256: str
    items: dict[str, dict[str, Any]]  # nodeid -> item of the previous results document
    per_image: dict[str, dict[str, Any]]  # nodeid -> metric -> packed per-image results

    @classmethod
    def load(cls, path: Path) -> "BaselineRelease":
        fix = "pass a results.json or a file written by --robustgate-save-baseline"
        try:
            raw = path.read_bytes()
            doc = json.loads(raw)
        except OSError as err:
            raise RobustgateError(f"cannot read the baseline: {err.strerror or err}; {fix}", where=str(path)) from None
        except ValueError as err:
            raise RobustgateError(f"the baseline is not JSON ({err}); {fix}", where=str(path)) from None
        if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION or not isinstance(doc.get("items"), list):
            found = doc.get("schema_version") if isinstance(doc, dict) else None
            raise RobustgateError(
                f"the baseline has results schema version {found!r}; this robustgate reads version {SCHEMA_VERSION}; {fix}",
                where=str(path),
            )
        items = {item["nodeid"]: item for item in doc["items"] if isinstance(item, dict) and "nodeid" in item}
        return cls(path, hashlib.sha256(raw).hexdigest(), items, dict(doc.get("per_image") or {}))

    def previous(self, nodeid: str) -> Previous | None:
        item = self.items.get(nodeid)
        if item is None:
            return None
        images = {metric: PerImage.from_json(data) for metric, data in self.per_image.get(nodeid, {}).items()}
        return Previous(dict(item.get("metrics", {})), images, f"the baseline {self.path.name} ({item.get('outcome')})")

    def compared(self, nodeid: str, metrics: dict[str, float | None]) -> dict[str, float | None]:
        """The previous release's values of this item's quality metrics (for the report's comparison)."""
        before = self.items.get(nodeid, {}).get("metrics", {})
        return {m: before[m] for m in metrics if m in before and higher_is_better(m) is not None}

    def describe(self) -> dict[str, str]:
        return {"path": str(self.path), "sha256": self.sha256}

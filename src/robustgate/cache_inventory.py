"""What an artifact cache folder holds, and removing what no run can use: `robustgate cache info|prune`.

An entry can never be read again when its key was made under another value of a component that no spec
decides (a library version, a digest of robustgate's code, the CPU's instruction set: see
robustgate.provenance; the header keeps them), when it is damaged (its checksum no longer matches), or
when it is a temporary file left by a run killed while writing. Entries keyed by a user's model code are
not judged by it: only a spec can say what that code is now. Entries unused for a while can be removed
too (``--older-than``): every read marks an entry's modification time as its last use.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from filelock import Timeout

from robustgate.cache import TEMPORARY_SUFFIX, DamagedEntry, ForeignEntry, lock, read_entry
from robustgate.provenance import describe_changes, spec_free

CURRENT = "current"
OTHER_VERSIONS = "written by other robustgate code, library versions or CPU"
DAMAGED = "damaged"
TEMPORARY = "left by an interrupted write"


@dataclass(frozen=True)
class CacheFile:
    path: Path
    kind: str  # the artifact kind: weights, steps, logits, attacks, masking, adversarial
    size: int
    last_used: float  # seconds since the epoch
    state: str  # CURRENT, OTHER_VERSIONS, DAMAGED or TEMPORARY
    problem: str = ""  # what is wrong with a damaged entry, or what changed since one was written

    @property
    def entry(self) -> Path:
        """The entry file this is, or, for a temporary file, the entry it was being written as."""
        if self.state != TEMPORARY:
            return self.path
        name = self.path.name
        return self.path.with_name(name[: name.index(".pt") + len(".pt")])


def scan(root: Path) -> list[CacheFile]:
    """Every entry and temporary file under ``root``, each read in full and checked against its checksum."""
    current = spec_free()
    return sorted((_classify(path, current) for path in _cache_files(root)), key=lambda found: found.path)


def _cache_files(root: Path) -> Iterator[Path]:
    for path in root.glob("*/*/*"):  # KIND/KEY[:2]/FILE, as ArtifactCache.path lays them out
        if path.is_file() and (path.suffix == ".pt" or path.name.endswith(TEMPORARY_SUFFIX)):
            yield path


def _classify(path: Path, current: dict[str, str]) -> CacheFile:
    stat = path.stat()
    found = partial(CacheFile, path=path, kind=path.parent.parent.name, size=stat.st_size, last_used=stat.st_mtime)
    if path.name.endswith(TEMPORARY_SUFFIX):
        return found(state=TEMPORARY)
    try:
        header, _ = read_entry(path)
    except ForeignEntry:  # an older cache format: its keys differ too, so no run looks it up
        return found(state=OTHER_VERSIONS)
    except (OSError, DamagedEntry) as err:
        return found(state=DAMAGED, problem=str(err))
    recorded = {name: value for name, value in header.provenance.items() if name in current}
    changed = describe_changes(recorded, {name: current[name] for name in recorded}, {})
    return found(state=OTHER_VERSIONS if changed else CURRENT, problem=", ".join(changed))


@dataclass(frozen=True)
class Pruned:
    removed: list[CacheFile]
    busy: list[CacheFile]  # a run held their lock: left for the next prune


def prune(root: Path, older_than_days: float | None = None, dry_run: bool = False) -> Pruned:
    """Remove every file no run can read, and with ``older_than_days`` every entry unused for that long."""
    cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
    removed, busy = [], []
    for found in scan(root):
        if found.state == CURRENT and (cutoff is None or found.last_used >= cutoff):
            continue
        try:
            # A running build holds its entry's lock; its temporary file is a write in progress, not a leftover.
            with lock(found.entry, timeout=0):
                if not dry_run:
                    found.path.unlink(missing_ok=True)
        except Timeout:
            busy.append(found)
            continue
        removed.append(found)
    return Pruned(removed, busy)

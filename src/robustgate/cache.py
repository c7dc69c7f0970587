"""Content-addressed store for expensive artifacts: trained weights, compressed models, predictions.

A key is the SHA-256 of everything that determines the artifact (spec
fragment, upstream keys, data fingerprints, seed, and the provenance that
:mod:`robustgate.provenance` names: library versions, robustgate's code, the
CPU's instruction set, ...), so a changed input never reads a stale artifact. Writes are atomic (temp file +
``os.replace``), so a run killed at any point leaves whole entries or none;
each entry carries the SHA-256 of its payload, so a file damaged afterwards
is detected, discarded with a warning and rebuilt rather than read. A per-key
file lock makes concurrent pytest-xdist workers build each artifact once.

An entry file is a magic line, a one-line JSON header (payload digest and
size, kind, creation time, the provenance and slot of its key) and the payload
as written by ``torch.save``. Beside the entries, ``.slots/`` keeps per slot
(the spec-level half of a key) the provenance of the last entry written, so a
rebuild can say which component changed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import torch
from filelock import FileLock

from robustgate.provenance import FORMAT as CACHE_FORMAT
from robustgate.provenance import ArtifactKey, canonical_hash, describe_changes, library_versions

T = TypeVar("T")
# 2: entries carry a header with their payload's checksum; 3: and the provenance their key was made of
MAGIC = f"robustgate-cache {CACHE_FORMAT}\n".encode()
SLOTS = ".slots"  # per slot, the last entry's provenance (not matched by the KIND/KEY[:2]/FILE layout)
TEMPORARY_SUFFIX = ".tmp"  # a write in progress, or one left by a run killed while writing
_UMASK = os.umask(0)
os.umask(_UMASK)


def content_key(*parts: Any) -> str:
    """A stable hash of JSON-able ``parts`` plus the library versions (artifacts of a run are keyed with
    :func:`robustgate.provenance.artifact_key`, which names everything else that decides them too)."""
    return canonical_hash({"format": CACHE_FORMAT, **library_versions(), "parts": parts})


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (weights files enter cache keys by content, not by name)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versioned_file_digest(path: Path) -> str:
    """:func:`file_digest`, read once per version of the file (its mtime and size): cache keys of steps that read a
    file (a distillation student's weights, an artifact) ask for it on every model lookup."""
    stat = path.stat()
    return _digest_of_version(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _digest_of_version(path: str, mtime_ns: int, size: int) -> str:
    return file_digest(Path(path))


class EntryHeader(NamedTuple):
    kind: str
    sha256: str
    size: int
    created: float
    provenance: dict[str, str]  # what its key was made of besides the spec (robustgate.provenance)
    slot: str  # the spec-level half of its key ("" for a plain content_key)


class DamagedEntry(Exception):
    """An entry file that is not a whole, unaltered robustgate entry; the message says what is wrong."""


class ForeignEntry(DamagedEntry):
    """A file in another format: one written by an older robustgate, or not by robustgate at all."""


def read_entry(path: Path) -> tuple[EntryHeader, bytes]:
    """An entry's header and its payload, checked against the header's size and SHA-256."""
    with path.open("rb") as handle:
        if handle.readline() != MAGIC:
            raise ForeignEntry(f"not a cache entry of format {CACHE_FORMAT}")
        try:
            header = EntryHeader(**json.loads(handle.readline()))
        except (ValueError, TypeError) as err:
            raise DamagedEntry(f"unreadable header ({err})") from None
        payload = handle.read()
    if len(payload) != header.size:
        raise DamagedEntry(f"truncated: {len(payload)} of {header.size} payload bytes")
    if hashlib.sha256(payload).hexdigest() != header.sha256:
        raise DamagedEntry("checksum mismatch: the payload changed after it was written")
    return header, payload


class ArtifactCache:
    """Artifacts on disk under ``root`` (or only in memory when ``root`` is None, i.e. ``--robustgate-no-cache``).

    ``explain`` receives one line per kind and reason when a warm cache rebuilds an artifact because a
    component of its key changed, e.g. ``attacks: robustgate attacks code changed``."""

    def __init__(self, root: Path | None, explain: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.hits = 0
        self.misses = 0
        self.explain = explain
        self._explained: set[str] = set()

    def path(self, kind: str, key: str) -> Path:
        assert self.root is not None
        return self.root / kind / key[:2] / f"{key}.pt"

    def get_or_create(self, kind: str, key: str | ArtifactKey, create: Callable[[], T]) -> T:
        """The stored artifact for ``key``, creating and storing it (once, across processes) if absent."""
        if self.root is None:
            self.misses += 1
            return create()
        path = self.path(kind, str(key))
        with lock(path):
            found = self._read(path)
            if found is not None:
                self.hits += 1
                return found
            self.misses += 1
            cause = self._rebuilt(kind, key) if isinstance(key, ArtifactKey) else None
            value = create()
            self._write(path, kind, value, key)
            if isinstance(key, ArtifactKey):
                self._record(key, cause)
            return value

    def holds(self, kind: str, key: str | ArtifactKey) -> bool:
        """Whether an entry for ``key`` is stored (not read nor checked: a damaged one is found when read)."""
        return self.root is not None and self.path(kind, str(key)).is_file()

    def remember(self, key: ArtifactKey) -> None:
        """Record a key that names no entry but feeds others (a model loaded from a file), so that what
        is rebuilt from it can say what changed."""
        if self.root is None:
            return
        previous = self._slot(key.slot)
        if previous is None or previous.get("key") != key.digest:
            self._record(key, self._cause(previous, key)[1] if previous else None)

    # -- why an artifact is rebuilt ---------------------------------------------------

    def _rebuilt(self, kind: str, key: ArtifactKey) -> str | None:
        """Say (once per kind and reason) why ``key`` is built when its slot held another entry; returns
        the root cause, which the slot record keeps for the artifacts built from this one."""
        previous = self._slot(key.slot)
        if previous is None:  # a first build: nothing changed
            return None
        if previous.get("key") == key.digest:
            line, cause = "its entry was removed (pruned, deleted or damaged)", previous.get("reason") or None
        else:
            line, cause = self._cause(previous, key)
        message = f"{kind}: {line}"
        if self.explain is not None and message not in self._explained:
            self._explained.add(message)
            self.explain(message)
        return cause

    def _cause(self, previous: dict[str, Any], key: ArtifactKey) -> tuple[str, str | None]:
        """The line saying what differs between the slot's last entry and ``key``, and the root cause: for
        a change of upstream keys alone, the cause that upstream artifact recorded."""
        recorded = previous.get("provenance", {})
        phrases = describe_changes(recorded, key.provenance, key.upstream)
        if phrases:
            return ", ".join(phrases), ", ".join(phrases)
        for name, slot in key.upstream.items():
            if recorded.get(name) != key.provenance.get(name):
                upstream = self._slot(slot) or {}
                root = upstream.get("reason") if upstream.get("key") == key.provenance.get(name) else None
                return f"rebuilt because its {name} changed" + (f": {root}" if root else ""), root or None
        return "its key changed", None

    def _slot_path(self, slot: str) -> Path:
        assert self.root is not None
        return self.root / SLOTS / slot[:2] / f"{slot}.json"

    def _slot(self, slot: str) -> dict[str, Any] | None:
        try:
            found = json.loads(self._slot_path(slot).read_text())
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def _record(self, key: ArtifactKey, cause: str | None) -> None:
        """Keep the slot's last key and provenance (advisory: a failed write only loses an explanation)."""
        record = {"key": key.digest, "provenance": key.provenance, "reason": cause or ""}
        with contextlib.suppress(OSError):
            _atomic_write(self._slot_path(key.slot), json.dumps(record, sort_keys=True).encode(), ".part")

    def _read(self, path: Path) -> Any | None:
        try:
            _, payload = read_entry(path)
        except FileNotFoundError:
            return None
        except (OSError, DamagedEntry) as err:  # rebuild rather than fail the gate, or worse, read a damaged model
            warnings.warn(f"robustgate: discarding damaged cache entry {path} ({err}); rebuilding it", stacklevel=3)
            path.unlink(missing_ok=True)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # its last use, which `robustgate cache prune --older-than` reads
        # Our own artifacts hold only tensors and plain containers, so the safe loader suffices.
        with warnings.catch_warnings():
            # int8 state dicts load through torch's legacy TypedStorage path, which warns; not ours to fix.
            warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
            return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)

    def _write(self, path: Path, kind: str, value: Any, key: str | ArtifactKey) -> None:
        buffer = io.BytesIO()
        torch.save(value, buffer)
        payload = buffer.getvalue()
        provenance, slot = (key.provenance, key.slot) if isinstance(key, ArtifactKey) else (library_versions(), "")
        header = EntryHeader(kind, hashlib.sha256(payload).hexdigest(), len(payload), time.time(), provenance, slot)
        _atomic_write(path, MAGIC + json.dumps(header._asdict(), separators=(",", ":")).encode() + b"\n" + payload)


def _atomic_write(path: Path, data: bytes, suffix: str = TEMPORARY_SUFFIX) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a shared CI cache must be readable by all
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)  # only still there if the write failed


@contextlib.contextmanager
def lock(path: Path, timeout: float = -1) -> Iterator[None]:
    """Hold the entry's lock (waiting for it unless ``timeout`` is given; filelock.Timeout when it runs out)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=timeout):
        yield

"""Content-addressed store for expensive artifacts: trained weights, compressed models, predictions.

A key is the SHA-256 of everything that determines the artifact (spec
fragment, upstream keys, data fingerprints, seed, library versions), so a
changed input never reads a stale artifact. Writes are atomic (temp file +
``os.replace``), so a run killed at any point leaves whole entries or none;
each entry carries the SHA-256 of its payload, so a file damaged afterwards
is detected, discarded with a warning and rebuilt rather than read. A per-key
file lock makes concurrent pytest-xdist workers build each artifact once.

An entry file is a magic line, a one-line JSON header (payload digest and
size, kind, creation time, the library versions in its key) and the payload
as written by ``torch.save``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
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

import robustgate

T = TypeVar("T")
CACHE_FORMAT = 2  # 2: entries carry a header with their payload's checksum
MAGIC = b"robustgate-cache 2\n"
TEMPORARY_SUFFIX = ".tmp"  # a write in progress, or one left by a run killed while writing
_UMASK = os.umask(0)
os.umask(_UMASK)


def content_key(*parts: Any) -> str:
    """A stable hash of JSON-able ``parts`` plus the versions that change numerical results."""
    payload = {"format": CACHE_FORMAT, **library_versions(), "parts": parts}
    text = json.dumps(payload, sort_keys=True, default=_jsonable, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def library_versions() -> dict[str, str]:
    """The versions every key includes: an entry written under other versions can never be read again."""
    import torchvision  # here: reading a spec imports this module and needs no torchvision

    return {
        "robustgate": robustgate.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "torch-pruning": _distribution_version("torch-pruning"),  # its module __version__ lags the release
        "torchao": _distribution_version("torchao"),  # PT2E int8 numerics
        "torchattacks": _distribution_version("torchattacks"),  # adversarial examples
        "pillow": _distribution_version("pillow"),  # its libjpeg decides JPEG corruptions and image decoding
    }


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (weights files enter cache keys by content, not by name)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def _distribution_version(name: str) -> str:  # a metadata lookup scans site-packages: ~5 ms each
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, (Path, tuple, set)):
        return str(value) if isinstance(value, Path) else list(value)
    raise TypeError(f"cannot hash {type(value).__name__} into a cache key")


class EntryHeader(NamedTuple):
    kind: str
    sha256: str
    size: int
    created: float
    versions: dict[str, str]


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
    """Artifacts on disk under ``root`` (or only in memory when ``root`` is None, i.e. ``--robustgate-no-cache``)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.hits = 0
        self.misses = 0

    def path(self, kind: str, key: str) -> Path:
        assert self.root is not None
        return self.root / kind / key[:2] / f"{key}.pt"

    def get_or_create(self, kind: str, key: str, create: Callable[[], T]) -> T:
        """The stored artifact for ``key``, creating and storing it (once, across processes) if absent."""
        if self.root is None:
            self.misses += 1
            return create()
        path = self.path(kind, key)
        with lock(path):
            found = self._read(path)
            if found is not None:
                self.hits += 1
                return found
            self.misses += 1
            value = create()
            self._write(path, kind, value)
            return value

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

    def _write(self, path: Path, kind: str, value: Any) -> None:
        buffer = io.BytesIO()
        torch.save(value, buffer)
        payload = buffer.getvalue()
        header = EntryHeader(kind, hashlib.sha256(payload).hexdigest(), len(payload), time.time(), library_versions())
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=TEMPORARY_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(MAGIC + json.dumps(header._asdict(), separators=(",", ":")).encode() + b"\n" + payload)
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

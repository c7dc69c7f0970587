"""Content-addressed store for expensive artifacts: trained weights, compressed models, predictions.

A key is the SHA-256 of everything that determines the artifact (spec
fragment, upstream keys, data fingerprints, seed, library versions), so a
changed input never reads a stale artifact. Writes are atomic (temp file +
``os.replace``) and a per-key file lock makes concurrent pytest-xdist workers
build each artifact once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch
import torchvision
from filelock import FileLock

import robustgate

T = TypeVar("T")
CACHE_FORMAT = 1
_UMASK = os.umask(0)
os.umask(_UMASK)


def content_key(*parts: Any) -> str:
    """A stable hash of JSON-able ``parts`` plus the versions that change numerical results."""
    payload = {
        "format": CACHE_FORMAT,
        "robustgate": robustgate.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "torch-pruning": _distribution_version("torch-pruning"),  # its module __version__ lags the release
        "torchao": _distribution_version("torchao"),  # PT2E int8 numerics
        "torchattacks": _distribution_version("torchattacks"),  # adversarial examples
        "pillow": _distribution_version("pillow"),  # its libjpeg decides JPEG corruptions and image decoding
        "parts": parts,
    }
    text = json.dumps(payload, sort_keys=True, default=_jsonable, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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
        with self._lock(path):
            found = self._read(path)
            if found is not None:
                self.hits += 1
                return found
            self.misses += 1
            value = create()
            self._write(path, value)
            return value

    @contextlib.contextmanager
    def _lock(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            yield

    def _read(self, path: Path) -> Any | None:
        if not path.exists():
            return None
        try:
            # Our own artifacts hold only tensors and plain containers, so the safe loader suffices.
            with warnings.catch_warnings():
                # int8 state dicts load through torch's legacy TypedStorage path, which warns; not ours to fix.
                warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
                warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated or foreign file: rebuild rather than fail the gate
            warnings.warn(f"robustgate: discarding unreadable cache entry {path} ({err}); rebuilding", stacklevel=2)
            path.unlink(missing_ok=True)
            return None

    def _write(self, path: Path, value: Any) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save(value, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a shared CI cache must be readable by all
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)  # only still there if the write failed

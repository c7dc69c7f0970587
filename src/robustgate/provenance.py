"""What decides a cached result besides the spec, and how a rebuilt artifact says what changed.

A cache key has two halves. The *what* is spec-level: the artifact's tag, its parameters, data
fingerprints, the seed. The *provenance* is a named mapping of everything else that decides the
bits: the versions of every library on the path, a digest of the robustgate source the artifact
runs (per subsystem, so editing an attack recomputes attacks and nothing else), the CPU's
instruction set and the env overrides of kernel dispatch, the training thread count where it
changes weights, the user's model code, and the keys of the upstream artifacts (a model's, for its
predictions). The *slot* is the hash of the what alone: two keys in one slot are the same artifact
under another provenance, and the components that differ are what a warm run reports as the reason
it rebuilt.

No torch at import time: ``robustgate validate`` imports the spec layer without torch.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import robustgate

FORMAT = 3  # in every key and entry; bump it when the components change, so old entries read as unreachable

LIBRARIES = ("torch", "torchvision", "torchattacks", "torch-pruning", "torchao", "numpy", "scipy", "pillow")
"""Every library a cached result runs through (scipy.ndimage inside corruptions, Pillow's libjpeg in
JPEG corruptions and image decoding, numpy in both)."""

SUBSYSTEMS: dict[str, tuple[str, ...]] = {  # name -> globs under the package folder
    "models": ("models/*.py",),  # architectures, the classifier wrapper, training, weight loading
    "data": ("data/*.py",),  # loaders, splits, resizing, ImageSet (its to_uint8 rounds corrupted pixels)
    "corruptions": ("data/corruptions/*.py",),
    "inference": ("inference.py",),
    "compressors": ("compressors/*.py", "compressors/int8/*.py"),  # ptq and its int8 engines and twin, prune, distill
    "attacks": ("attacks/*.py",),  # the attacks, the int8 protocol, the masking diagnostics
}

# The subsystems each artifact's build runs; what its upstream artifacts ran enters through their keys.
# "loaded": a baseline from a weights file or pretrained checkpoint (no entry of its own, but a key).
ARTIFACT_CODE: dict[str, tuple[str, ...]] = {
    "weights": ("models", "data"),
    "loaded": ("models",),
    "steps": ("compressors", "models", "data"),
    "logits": ("inference", "models", "data"),
    "corrupted-logits": ("corruptions", "data", "inference", "models"),
    "attacks": ("attacks", "compressors", "inference", "models", "data"),
    "masking": ("attacks", "compressors", "inference", "models", "data"),
    "adversarial": ("attacks", "inference", "models", "data"),  # a differentiable model's adversarial images
}
TRAINING = frozenset({"weights", "steps"})  # builds whose weights depend on the thread count (tests/test_threads.py)

ISA_ENV = (  # env overrides of kernel dispatch: each picks other fp32 or int8 kernels on the same CPU
    "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "FBGEMM_ENABLE_INSTRUCTIONS",
    "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR",
)
KERNEL_FLAGS = frozenset({  # /proc/cpuinfo flags that select fbgemm/oneDNN/XNNPACK kernels
    "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve", "sve2",
})

SOURCE_ROOT: Path | None = None
"""The robustgate source tree whose code is hashed; None: the installed package (tests point it at an edited copy)."""

MODEL_CODE = "model code"  # prefix of user-model source components: "model code (mypkg/models.py)"


# -- keys ---------------------------------------------------------------------


@dataclass(frozen=True)
class ArtifactKey:
    """A cache key, with the parts that explain it when it replaces an earlier one."""

    digest: str  # the entry's name: the what and the provenance together
    slot: str  # the what alone (upstream artifacts by their slots)
    provenance: dict[str, str] = field(default_factory=dict)  # upstream components hold the upstream digest
    upstream: dict[str, str] = field(default_factory=dict)  # upstream component -> that artifact's slot

    def __str__(self) -> str:
        return self.digest


def artifact_key(
    what: tuple, provenance: Mapping[str, str], upstream: Mapping[str, ArtifactKey | str | None] | None = None,
) -> ArtifactKey:
    """The key of an artifact determined by ``what`` (spec-level parts, the artifact's tag first),
    ``provenance`` (see :func:`environment`) and its ``upstream`` artifacts' keys, by role ("model")."""
    ups = {name: key for name, key in (upstream or {}).items() if key is not None}
    slots = {name: key.slot if isinstance(key, ArtifactKey) else key for name, key in ups.items()}
    slot = canonical_hash({"format": FORMAT, "what": what, "upstream": slots})
    full = {**provenance, **{name: str(key) for name, key in ups.items()}}
    return ArtifactKey(canonical_hash({"slot": slot, "provenance": full}), slot, full, slots)


def canonical_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=_jsonable, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, (Path, tuple, set)):
        return str(value) if isinstance(value, Path) else list(value)
    if isinstance(value, ArtifactKey):
        return value.digest
    raise TypeError(f"cannot hash {type(value).__name__} into a cache key")


# -- components -----------------------------------------------------------------


def environment(kind: str) -> dict[str, str]:
    """The provenance no spec decides for an artifact of ``kind`` (a key of :data:`ARTIFACT_CODE`)."""
    code = all_code_digests()
    found = {
        **library_versions(),
        **{code_component(name): code[name] for name in ARTIFACT_CODE[kind]},
        **cpu_isa(),  # fp32 GEMMs and int8 kernels alike dispatch on it, and their sums differ by kernel
    }
    if kind in TRAINING:
        from robustgate.threads import build_thread_count  # imports torch: only when a key is built

        found["training threads"] = str(build_thread_count())
    return found


def spec_free() -> dict[str, str]:
    """Every component ``robustgate cache prune`` can evaluate without a spec: an entry that recorded
    another value for one of them is unreachable from any current key."""
    code = all_code_digests()
    return {**library_versions(), **{code_component(name): digest for name, digest in code.items()}, **cpu_isa()}


def code_component(subsystem: str) -> str:
    return f"robustgate {subsystem} code"


@functools.lru_cache(maxsize=None)
def _distribution_version(name: str) -> str:  # a metadata lookup scans site-packages: ~5 ms each
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


@functools.lru_cache(maxsize=None)
def _build_version(name: str) -> str:
    """torch's and torchvision's own ``__version__``: unlike their metadata it names the build (``+cpu``)."""
    return str(importlib.import_module(name).__version__)  # imported already wherever a key is built


def library_versions() -> dict[str, str]:
    """robustgate's version and those of :data:`LIBRARIES` (metadata: torch-pruning's module lags its release)."""
    found = {name: _distribution_version(name) for name in LIBRARIES}
    found.update({name: _build_version(name) for name in ("torch", "torchvision")})
    return {"robustgate": robustgate.__version__, **found}


def all_code_digests() -> dict[str, str]:
    """SHA-256 of each subsystem's source files (paths and bytes), hashed once per source tree and process."""
    return _code_digests(SOURCE_ROOT or Path(robustgate.__file__).parent)


@functools.lru_cache(maxsize=4)
def _code_digests(root: Path) -> dict[str, str]:
    digests = {}
    for name, patterns in SUBSYSTEMS.items():
        digest = hashlib.sha256()
        for path in sorted({path for pattern in patterns for path in root.glob(pattern)}):
            data = path.read_bytes()
            digest.update(f"{path.relative_to(root).as_posix()}\0{len(data)}\0".encode() + data)
        digests[name] = digest.hexdigest()
    return digests


def cpu_isa() -> dict[str, str]:
    """What picks the kernels on this machine: torch's CPU capability, its default quantized engine, the
    kernel-relevant CPU flags, and the env overrides of dispatch (read on every call: cheap, and settable)."""
    return {**_machine_isa(), **{name: os.environ.get(name, "unset") for name in ISA_ENV}}


@functools.lru_cache(maxsize=1)
def _machine_isa() -> dict[str, str]:
    import torch  # only when a key is built or a cache is scanned

    return {
        "machine": platform.machine(),
        "cpu capability": str(torch.backends.cpu.get_cpu_capability()),
        "quantized engine": str(torch.backends.quantized.engine),
        "cpu flags": " ".join(sorted(cpu_flags())),
    }


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The :data:`KERNEL_FLAGS` the first CPU lists (x86 ``flags``, Arm ``Features``); empty without /proc."""
    try:
        with cpuinfo.open() as handle:
            for line in handle:  # stops at the first core's line: reading every core's costs ms on big machines
                name, _, value = line.partition(":")
                if name.strip() in ("flags", "Features"):
                    return set(value.split()) & KERNEL_FLAGS
    except OSError:
        pass
    return set()


def int8_sums_saturate(flags: set[str] | None = None) -> bool:
    """Whether this is an x86 CPU without VNNI, whose int8 kernels (fbgemm, ONNX Runtime's MLAS) add pairs of 8-bit
    products in 16 bits (vpmaddubsw), which saturate on large codes: the int8 model then computes something its
    quantized arithmetic does not describe, and a twin cannot follow it."""
    flags = cpu_flags() if flags is None else flags
    return "avx2" in flags and not flags & {"avx512_vnni", "avx_vnni"}


# -- explaining a rebuild ---------------------------------------------------------


def describe_changes(old: Mapping[str, str], new: Mapping[str, str], upstream: Mapping[str, str]) -> list[str]:
    """Phrases for the components of ``new`` that differ from ``old``, upstream ones left out."""
    phrases = []
    for name in [*new, *(name for name in old if name not in new)]:
        before, after = old.get(name), new.get(name)
        if before == after or name in upstream:
            continue
        phrases.append(_describe(name, before, after))
    return list(dict.fromkeys(phrases))  # several model files share one phrase only when named alike


def _describe(name: str, before: str | None, after: str | None) -> str:
    if name.startswith("robustgate ") and name.endswith(" code"):
        return f"{name} changed"
    if name.startswith(MODEL_CODE):
        return f"model code changed{name[len(MODEL_CODE):]}"
    if name == "model structure":
        return "model structure changed"
    if name == "cpu flags":
        gone, added = set((before or "").split()), set((after or "").split())
        changed = [f"+{flag}" for flag in sorted(added - gone)] + [f"-{flag}" for flag in sorted(gone - added)]
        return f"CPU flags {' '.join(changed)}"
    return f"{name} {before or 'absent'} -> {after or 'absent'}"

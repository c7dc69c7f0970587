"""``robustgate merge``: join the results.json of shards (CI matrix jobs, runs of parts of a spec) into one.

The rules, in the order they are checked:

- Every input is a results document of a version this robustgate reads (``READABLE_VERSIONS``); an
  older one is upgraded first (``results.upgraded``: a version-1 item gains ``kind`` and ``datasets``),
  and the merged document is of this version. Never overridable: a document of a newer version may
  mean other things under the same names.
- No item node id appears in two files. Never overridable: shards must be disjoint, or the merged
  counts would hold an item twice (and which of two verdicts would be the one to keep?). To re-run a
  shard, merge the re-run's file instead of the first one.
- Then every difference below is collected and refused at once, unless ``--allow-mismatch``:
  - a spec in two files with different contents (sha256). Specs are matched by the path the items
    name (``robustness_specs/x.yaml``, relative to the rootdir), since the ``specs`` keys are the
    paths each machine saw, which differ between checkouts; different specs are a plain union;
  - an environment field that decides results differs (``COMPARED_ENVIRONMENT``);
  - the runs were compared with different baseline releases (``--robustgate-baseline``, by sha256:
    the path a machine read it from does not matter), or only some of them with one.

When mismatches are allowed, the merged document keeps the first file's environment, specs entry and
baseline, adds the other values to ``environment`` as ``"<field> in <file>"`` (the environment takes
extra string keys), and adds a note to every item that ran differently, so the reports show it.

The merged verdicts: ``exit_status`` is 0 only if every shard's is 0, otherwise the most severe
(``worst_exit_status``), and ``robustgate merge`` exits with it, so a CI step that merges fails when
a shard did; ``interrupted`` if any shard was; ``not_run`` is the union of the shards'. Timings: ``total_seconds`` is the longest
shard (shards run side by side), ``shards_seconds`` the sum of the shards' totals (the machine time
spent), and every other timing (``contracts_seconds``, ...) is summed. A merged document merges again:
its ``shards_seconds`` counts as its shards' sum. Items keep file order, then each file's order;
``per_image`` (files written by ``--robustgate-save-baseline``) is a union, so shards of a saved
baseline merge into one baseline file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from robustgate.errors import RobustgateError
from robustgate.reports.results import OPTIONAL_LIBRARIES, READABLE_VERSIONS, SCHEMA, SCHEMA_VERSION, upgraded

# The fields that decide what a run measures: library versions change kernels and numerics, the
# quantized engine changes int8 arithmetic, and the CPU changes every latency. ``platform`` is left
# out: it holds the kernel release and libc version, which differ between runners of one CI image
# without changing a number; an architecture change shows in ``cpu`` and ``quantized_engine`` anyway.
# The optional runtimes' versions (absent where not installed) run an artifact variant's kernels.
COMPARED_ENVIRONMENT = ("python", "torch", "torchvision", "quantized_engine", "robustgate", "cpu", *OPTIONAL_LIBRARIES)

OVERRIDE = "pass --allow-mismatch to merge anyway"

# pytest's exit codes from least to most severe: ok, no tests collected, tests failed, interrupted,
# usage error, internal error. A code pytest does not define (a plugin's) counts as the most severe.
_SEVERITY = (0, 5, 1, 2, 4, 3)


class MergeRefused(RobustgateError, ValueError):
    """Results that must not be merged; the message names the files, what differs, and the override if any."""


def merge_results(docs: Sequence[tuple[str, dict[str, Any]]], allow_mismatch: bool = False) -> dict[str, Any]:
    """One results document holding every item of ``docs`` (``(file name, loaded document)`` pairs).

    Raises ``MergeRefused`` for a document of another schema version, an item in two files, or (unless
    ``allow_mismatch``) results from different specs, environments or baselines.
    """
    if not docs:
        raise MergeRefused("nothing to merge: give at least one results.json")
    for name, doc in docs:
        _check_document(name, doc)
    docs = [(name, upgraded(doc)) for name, doc in docs]
    for name, doc in docs:
        _check_items(name, doc)
    _check_disjoint(docs)
    differences = mismatches(docs)
    if differences and not allow_mismatch:
        raise MergeRefused(f"refusing to merge: {'; '.join(d.message for d in differences)}; {OVERRIDE}")
    shards = _merged_shards(docs, allow_mismatch)
    first = docs[0][1]
    environment = dict(first["environment"])
    for difference in differences:
        environment.update(difference.recorded)
    merged: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "exit_status": worst_exit_status([doc["exit_status"] for _, doc in docs]),
        "interrupted": any(bool(doc.get("interrupted", False)) for _, doc in docs),
        "environment": environment,
        "specs": _merged_specs(docs),
        "items": _merged_items(docs, differences),
        "timings": merged_timings([doc["timings"] for _, doc in docs]),
    }
    previous_release = next((doc["baseline"] for _, doc in docs if "baseline" in doc), None)
    if previous_release is not None:
        merged["baseline"] = dict(previous_release)
    per_image = {nodeid: data for _, doc in docs for nodeid, data in (doc.get("per_image") or {}).items()}
    if per_image:
        merged["per_image"] = per_image
    if shards is not None:
        merged["shards"] = shards
    ran = {item["nodeid"] for item in merged["items"]}
    not_run = [nodeid for _, doc in docs for nodeid in doc.get("not_run") or [] if nodeid not in ran]
    if not_run:
        merged["not_run"] = list(dict.fromkeys(not_run))
    return merged


def _merged_shards(docs: Sequence[tuple[str, dict[str, Any]]], allow_mismatch: bool) -> dict[str, Any] | None:
    """``{"count": N, "merged": [1, 2, ...]}`` for files written by --robustgate-shard I/N (or merges of them).
    A missing shard would make a partial run look whole, so it is refused unless --allow-mismatch."""
    counts, indices = set(), []
    for _, doc in docs:
        if "shard" in doc:
            counts.add(doc["shard"]["count"])
            indices.append(doc["shard"]["index"])
        elif "shards" in doc:
            counts.add(doc["shards"]["count"])
            indices += doc["shards"]["merged"]
    if not counts:
        return None
    if len(counts) > 1:
        raise MergeRefused(f"refusing to merge: the files split the run into different numbers of shards "
                           f"({', '.join(map(str, sorted(counts)))}); merge the shards of one run")
    count = counts.pop()
    indices.sort()
    missing = [index for index in range(1, count + 1) if index not in indices]
    if missing and not allow_mismatch:
        raise MergeRefused(f"refusing to merge: shard{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(f'{i}/{count}' for i in missing)} missing, so the merged report would "
                           f"look like the whole run without {'them' if len(missing) > 1 else 'it'}; {OVERRIDE}")
    return {"count": count, "merged": indices}


@dataclass(frozen=True)
class Mismatch:
    """One overridable difference: what to say, and what to record when it is allowed."""

    message: str  # the refusal's wording
    shard: int  # the index of the file whose items ran differently from the first file's
    note: str  # added to those items' notes when the mismatch is allowed
    spec: str | None = None  # only that spec's items, when the spec is what differs
    recorded: dict[str, str | int] = field(default_factory=dict)  # extra environment keys

    def concerns(self, shard: int, item: dict[str, Any]) -> bool:
        return shard == self.shard and (self.spec is None or item.get("spec") == self.spec)


def mismatches(docs: Sequence[tuple[str, dict[str, Any]]]) -> list[Mismatch]:
    """Every overridable difference between the (checked) documents, each against the first file that has the thing."""
    return _spec_mismatches(docs) + _environment_mismatches(docs) + _previous_release_mismatches(docs)


def worst_exit_status(statuses: Sequence[int]) -> int:
    """0 only if all are 0, else the most severe: the answer does not depend on the order of the files."""
    return max(statuses, key=lambda s: (_SEVERITY.index(s) if s in _SEVERITY else len(_SEVERITY), s))


def merged_timings(timings: Sequence[dict[str, float]]) -> dict[str, float]:
    """``total_seconds``: the longest shard; ``shards_seconds``: the sum of their totals; the rest summed."""
    merged: dict[str, float] = {"total_seconds": max(t["total_seconds"] for t in timings),
                                "shards_seconds": sum(t.get("shards_seconds", t["total_seconds"]) for t in timings)}
    for shard in timings:
        for key, seconds in shard.items():
            if key not in ("total_seconds", "shards_seconds"):
                merged[key] = merged.get(key, 0.0) + seconds
    return merged


def _check_document(name: str, doc: Any) -> None:
    if not isinstance(doc, dict) or doc.get("schema_version") not in READABLE_VERSIONS:
        found = doc.get("schema_version") if isinstance(doc, dict) else None
        raise MergeRefused(f"{name}: results schema version {found!r}, this robustgate reads versions "
                           f"{READABLE_VERSIONS[0]} to {SCHEMA_VERSION}; merge files written by this robustgate version "
                           "or an older one")
    shapes = {"items": list, "specs": dict, "environment": dict, "timings": dict, "exit_status": int}
    for key, kind in shapes.items():
        if not isinstance(doc.get(key), kind):
            raise MergeRefused(f"{name}: not a robustgate results document ('{key}' is missing or not a {kind.__name__})")
    if not all(isinstance(item, dict) and isinstance(item.get("nodeid"), str) for item in doc["items"]):
        raise MergeRefused(f"{name}: not a robustgate results document (an item without a 'nodeid')")
    timings = doc["timings"]
    if "total_seconds" not in timings or not all(isinstance(t, (int, float)) for t in timings.values()):
        raise MergeRefused(f"{name}: not a robustgate results document ('timings' without 'total_seconds' or not numbers)")


def _check_items(name: str, doc: dict[str, Any]) -> None:
    """Every item has what this version requires (after ``upgraded``): the re-rendered reports read all of it."""
    required = SCHEMA["properties"]["items"]["items"]["required"]
    for item in doc["items"]:
        missing = [key for key in required if key not in item]
        if missing:
            raise MergeRefused(f"{name}: item {item['nodeid']} lacks {', '.join(missing)}: not a robustgate results document")


def _check_disjoint(docs: Sequence[tuple[str, dict[str, Any]]]) -> None:
    owner: dict[str, str] = {}
    for name, doc in docs:
        mine = {item["nodeid"] for item in doc["items"]}
        for nodeid in mine:
            if nodeid in owner:
                shared = sorted(n for n in mine if owner.get(n) == owner[nodeid])
                raise MergeRefused(
                    f"{owner[nodeid]} and {name} both hold {len(shared)} item(s), e.g. {shared[0]}: shards must be "
                    "disjoint, or the merged results would count an item twice (--allow-mismatch does not override this)"
                )
        owner.update(dict.fromkeys(mine, name))


def _spec_identity(key: str, item_specs: set[str]) -> str:
    """The rootdir-relative path the items give a ``specs`` key (an absolute path), else the key itself."""
    parts = PurePosixPath(key.replace("\\", "/")).parts
    for relative in sorted(item_specs, key=lambda s: -len(PurePosixPath(s).parts)):
        tail = PurePosixPath(relative).parts
        if tail and parts[-len(tail):] == tail:
            return relative
    return key


def _specs_by_identity(doc: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    item_specs = {item["spec"] for item in doc["items"] if isinstance(item.get("spec"), str)}
    return {_spec_identity(key, item_specs): (key, entry) for key, entry in doc["specs"].items()}


def _spec_mismatches(docs: Sequence[tuple[str, dict[str, Any]]]) -> list[Mismatch]:
    first: dict[str, tuple[str, str]] = {}  # spec -> (file, sha256) where it was first seen
    found = []
    for shard, (name, doc) in enumerate(docs):
        for spec, (_, entry) in _specs_by_identity(doc).items():
            sha = str(entry.get("sha256"))
            if spec not in first:
                first[spec] = (name, sha)
            elif sha != first[spec][1]:
                owner, theirs = first[spec]
                found.append(Mismatch(
                    f"{owner} and {name} ran different contents of {spec} (sha256 {theirs[:12]} and {sha[:12]})", shard,
                    f"merged with --allow-mismatch: ran on other contents of {spec} (sha256 {sha[:12]}) than the "
                    f"merged specs entry (from {owner})", spec=spec))
    return found


def _environment_mismatches(docs: Sequence[tuple[str, dict[str, Any]]]) -> list[Mismatch]:
    owner, reference = docs[0][0], docs[0][1]["environment"]
    found = []
    for shard, (name, doc) in enumerate(docs[1:], start=1):
        env = doc["environment"]
        fields = [f for f in COMPARED_ENVIRONMENT if env.get(f) != reference.get(f)]
        if fields:
            shown = ", ".join(f"{f} {_version(env.get(f))} ({owner}: {_version(reference.get(f))})" for f in fields)
            values = ", ".join(f"{f} {env.get(f)}" for f in fields)
            found.append(Mismatch(
                f"{name} ran in another environment than {owner}: {shown}", shard,
                f"merged with --allow-mismatch: ran with {values} (the merged environment is {owner}'s)",
                recorded={f"{f} in {name}": env[f] if isinstance(env.get(f), (str, int)) else "missing" for f in fields}))
    return found


def _version(value: Any) -> str:
    return "not installed" if value is None else repr(value)  # an optional runtime is absent from an environment


def _previous_release_mismatches(docs: Sequence[tuple[str, dict[str, Any]]]) -> list[Mismatch]:
    """Shards compared with another previous release (--robustgate-baseline: the document's ``baseline``)."""
    def sha(doc: dict[str, Any]) -> str | None:
        return (doc.get("baseline") or {}).get("sha256")

    def shown(doc: dict[str, Any]) -> str:
        digest = sha(doc)
        return f"baseline sha256 {digest[:12]}" if digest else "no baseline"

    # against the first file that has a baseline: the one the merged document keeps
    first = next((shard for shard, (_, doc) in enumerate(docs) if sha(doc)), 0)
    owner, reference = docs[first]
    return [
        Mismatch(f"{name} was compared with {shown(doc)}, {owner} with {shown(reference)}", shard,
                 f"merged with --allow-mismatch: compared with {shown(doc)}, not the merged document's ({owner}'s)")
        for shard, (name, doc) in enumerate(docs) if sha(doc) != sha(reference)
    ]


def _merged_specs(docs: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The union of the specs, one entry per spec: the first file's key and entry."""
    merged: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for _, doc in docs:
        for spec, (key, entry) in _specs_by_identity(doc).items():
            if spec not in seen and key not in merged:
                seen.add(spec)
                merged[key] = dict(entry)
    return merged


def _merged_items(docs: Sequence[tuple[str, dict[str, Any]]], differences: list[Mismatch]) -> list[dict[str, Any]]:
    items = []
    for shard, (_, doc) in enumerate(docs):
        for item in doc["items"]:
            notes = [d.note for d in differences if d.concerns(shard, item)]
            items.append({**item, "notes": [*item.get("notes", []), *notes]} if notes else dict(item))
    return items

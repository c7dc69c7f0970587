"""Mutation fuzzing: a valid spec, broken at random, either still loads or fails with a located SpecError.

Valid specs come from the round-trip tests' ``spec_dicts()``. Each example breaks one at the data level
(a key deleted, misspelt or added, a value of another type, a list entry doubled, a dataset reference
pointed nowhere or at itself) or at the text level (a line or character deleted or doubled, a tab, colon
or bracket inserted). Loading may succeed (some mutations keep the spec valid) or raise a SpecError whose
message locates the problem; any other exception is a bug in the reader.
"""

from __future__ import annotations

import copy
import re
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_spec_roundtrip import spec_dicts

from robustgate.errors import SpecError
from robustgate.spec import load_cases

Path_ = tuple[Any, ...]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Where a spec's error names its place: the message opens with `spec.yaml:LINE: ` or lists `N problems in spec.yaml:`.
LOCATED = re.compile(r"spec\.yaml:(\d+): \S|\d+ problems in spec\.yaml:\n")

OTHER_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-1000, 1000), st.floats(), st.text(max_size=8),
    st.lists(st.integers(0, 9), max_size=3),
    st.dictionaries(st.text(string.ascii_letters, max_size=5), st.integers(), max_size=2),
    st.sampled_from([10**30, -1, -0.5, "NaN", "", ".inf", "8/0", "1e400", "~"]),
)
UNKNOWN_KEYS = st.one_of(st.text(string.ascii_letters + "_-", min_size=1, max_size=10), st.integers(0, 99), st.none())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder to load ``spec.yaml`` from, made the working directory so errors read ``spec.yaml:LINE``."""
    folder = tmp_path_factory.mktemp("mutations")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield folder


def assert_loads_or_locates_its_error(folder: Path, text: str) -> None:
    (folder / "spec.yaml").write_text(text, encoding="utf-8")
    try:
        load_cases(folder / "spec.yaml", None)
    except SpecError as err:
        message = str(err)
        assert LOCATED.match(message), message
        last = text.rstrip("\n").count("\n") + 1  # never the empty line after the final newline
        for line in re.findall(r"spec\.yaml:(\d+): ", message):
            assert 1 <= int(line) <= last, f"line {line} of a {last}-line file: {message}"


# --- data-level mutations ---------------------------------------------------------------------------------


def places(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every (path, value) in ``node``, the root included; paths are the keys and indices down to the value."""
    yield path, node
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for part, child in children:
        yield from places(child, path + (part,))


def parent(root: Any, path: Path_) -> Any:
    for part in path[:-1]:
        root = root[part]
    return root


def keys(spec: dict[str, Any]) -> list[Path_]:
    return [path for path, _ in places(spec) if path and isinstance(parent(spec, path), dict)]


def delete_key(draw: st.DrawFn, spec: dict[str, Any]) -> None:
    path = draw(st.sampled_from(keys(spec)))
    del parent(spec, path)[path[-1]]


def typo(draw: st.DrawFn, word: str) -> str:
    i = draw(st.integers(0, max(len(word) - 1, 0)))
    edits = [word[:i] + word[i + 1:], word[:i] + word[i:i + 1] * 2 + word[i + 1:], word.upper(), word + "s",
             word[:i] + word[i + 1:i + 2] + word[i:i + 1] + word[i + 2:], word.replace("_", "-")]
    return draw(st.sampled_from(edits))


def rename_key(draw: st.DrawFn, spec: dict[str, Any]) -> None:
    path = draw(st.sampled_from(keys(spec)))
    mapping = parent(spec, path)
    new = typo(draw, str(path[-1]))
    renamed = {(new if key == path[-1] else key): value for key, value in mapping.items()}  # the key keeps its place
    mapping.clear()
    mapping.update(renamed)


def replace_value(draw: st.DrawFn, spec: dict[str, Any]) -> None:
    path = draw(st.sampled_from([path for path, _ in places(spec) if path]))
    parent(spec, path)[path[-1]] = draw(OTHER_VALUES)


def duplicate_list_entry(draw: st.DrawFn, spec: dict[str, Any]) -> None:
    lists = [value for _, value in places(spec) if isinstance(value, list) and value]
    entries = draw(st.sampled_from(lists))
    entries.insert(draw(st.integers(0, len(entries))), copy.deepcopy(draw(st.sampled_from(entries))))


def insert_unknown_key(draw: st.DrawFn, spec: dict[str, Any]) -> None:
    mappings = [value for _, value in places(spec) if isinstance(value, dict)]
    draw(st.sampled_from(mappings))[draw(UNKNOWN_KEYS)] = draw(OTHER_VALUES)


def bad_reference(draw: st.DrawFn, spec: dict[str, Any]) -> None:
    """A dataset reference (`from:`, `on:`) pointed at a dataset that does not exist, or a dataset at itself."""
    refs = [path for path in keys(spec) if path[-1] in ("from", "on")]
    if not refs:
        return delete_key(draw, spec)
    path = draw(st.sampled_from(refs))
    itself = path[1] if path[0] == "datasets" else "missing"
    parent(spec, path)[path[-1]] = draw(st.sampled_from(["missing", itself, typo(draw, str(parent(spec, path)[path[-1]]))]))


MUTATIONS: list[Callable[[st.DrawFn, dict[str, Any]], None]] = [
    delete_key, rename_key, replace_value, duplicate_list_entry, insert_unknown_key, bad_reference,
]


@st.composite
def mutated_specs(draw: st.DrawFn) -> str:
    spec = draw(spec_dicts())
    draw(st.sampled_from(MUTATIONS))(draw, spec)
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, default_flow_style=draw(st.sampled_from([False, None])))


@FUZZ
@given(text=mutated_specs())
def test_a_spec_broken_in_its_data_loads_or_says_where_it_is_broken(workdir: Path, text: str) -> None:
    assert_loads_or_locates_its_error(workdir, text)


# --- text-level mutations -----------------------------------------------------------------------------------

INSERTS = ["\t", "\x1b", "\n", ":", ": ", "[", "]", "{", "}", "-", "- ", "#", "'", '"', ",", "&", "*", "!", "|", ">", "%",
           "@", "`", "?"]


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    text = yaml.safe_dump(draw(spec_dicts()), sort_keys=False, default_flow_style=draw(st.sampled_from([False, None])))
    lines = text.splitlines(keepends=True)
    at_line = draw(st.integers(0, len(lines) - 1))
    at_char = draw(st.integers(0, len(text) - 1))
    edit = draw(st.sampled_from(["delete line", "double line", "delete char", "double char", "insert"]))
    if edit == "delete line":
        return "".join(lines[:at_line] + lines[at_line + 1:])
    if edit == "double line":
        return "".join(lines[:at_line + 1] + lines[at_line:])
    if edit == "delete char":
        return text[:at_char] + text[at_char + 1:]
    if edit == "double char":
        return text[:at_char + 1] + text[at_char:]
    return text[:at_char] + draw(st.sampled_from(INSERTS)) + text[at_char:]


@FUZZ
@given(text=mutated_texts())
def test_a_spec_broken_in_its_text_loads_or_says_where_it_is_broken(workdir: Path, text: str) -> None:
    assert_loads_or_locates_its_error(workdir, text)

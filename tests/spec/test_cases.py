"""Spec matrix (``matrix:``): one file expands into cases, each validated as an ordinary spec, with placeholders
filled typed, exclusions honoured, and every mistake one error with file:line."""

from __future__ import annotations

import itertools
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_spec_edits import edit

from robustgate.cli import main
from robustgate.errors import SpecError
from robustgate.spec import load_cases, load_spec

SPEC = """\
robustgate: 1
name: grid
matrix:
  arch: [resnet18, resnet34]
  source:
    - {name: handwritten, targets: [printed], epochs: 2}
    - {name: printed, targets: [handwritten], epochs: 3}
  exclude:
    - {arch: resnet34, source: printed}
model:
  arch: "{arch}"
  kwargs: {num_classes: 10}
  weights: train
  train: {on: "{source}-train", epochs: "{source.epochs}"}
  input: {size: [32, 32]}
datasets:
  handwritten-train: {builtin: digits, domain: handwritten, part: train}
  printed-train: {builtin: digits, domain: printed, part: train}
  handwritten: {builtin: digits, domain: handwritten, part: test}
  printed: {builtin: digits, domain: printed, part: test}
variants:
  pruned-{ratio}: {prune: {method: l1, ratio: [0.25, 0.5]}}
contracts:
  - shift: {source: "{source}", targets: "{source.targets}", max_drop: 0.2, variants: [pruned-{ratio}]}
  - accuracy: {on: "{source}", min: 0.5}
profiles:
  cpu:
    matrix: {arch: [resnet18], exclude: []}
"""


def write(tmp_path, text: str, name: str = "grid.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_matrix_expands_into_named_cases_with_typed_values(tmp_path) -> None:
    specs = load_cases(write(tmp_path, SPEC))
    assert [s.case for s in specs] == ["resnet18-handwritten", "resnet18-printed", "resnet34-handwritten"]  # one excluded
    first, second, third = specs
    assert (first.model.arch, first.model.train.on, first.model.train.epochs) == ("resnet18", "handwritten-train", 2)
    assert (second.model.arch, second.model.train.on, second.model.train.epochs) == ("resnet18", "printed-train", 3)
    assert third.model.arch == "resnet34"
    shift = second.contracts[0]
    assert shift.params.source == "printed" and shift.params.targets == ["handwritten"]  # a whole placeholder keeps its list
    assert shift.variants == ("pruned-0.25", "pruned-0.5")  # the variant template is not a matrix key: left for it
    assert set(second.variants) == {"pruned-0.25", "pruned-0.5"}
    assert all(s.name == "grid" and s.profile is None for s in specs)


def test_environment_references_are_not_placeholders(tmp_path) -> None:
    raw = edit(SPEC, "  handwritten: {builtin: digits, domain: handwritten, part: test}\n", "  handwritten: {imagefolder: \"${HOME}/{source}\"}\n")
    spec = load_cases(write(tmp_path, raw))[1]
    assert spec.datasets["handwritten"].params.imagefolder == "${HOME}/printed"


def test_a_profile_can_shrink_the_matrix(tmp_path) -> None:
    path = write(tmp_path, SPEC)
    assert [s.case for s in load_cases(path, "cpu")] == ["resnet18-handwritten", "resnet18-printed"]
    assert {s.profile for s in load_cases(path, "cpu")} == {"cpu"}


def test_load_spec_refuses_a_matrix_spec_rather_than_pick_a_case(tmp_path) -> None:
    with pytest.raises(ValueError, match="matrix of 3 cases; read it with load_cases"):
        load_spec(write(tmp_path, SPEC))


def test_validate_counts_the_items_of_every_case(tmp_path, capsys) -> None:
    path = write(tmp_path, SPEC)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    # per case: baseline accuracy, and accuracy + shift on each of the two pruned variants: 5 items
    assert "(3 matrix cases, 4 datasets, 3 models, 2 contracts each, 15 items)" in out
    assert "(profile cpu) (2 matrix cases" in out


MATRIX_ERRORS = [
    ("matrix: [resnet18]", "grid.yaml:3: matrix: expected a mapping of keys to lists of values"),
    ("matrix: {arch: resnet18}", "grid.yaml:3: matrix.arch: expected a non-empty list of values"),
    ("matrix: {arch: []}", "grid.yaml:3: matrix.arch: expected a non-empty list of values"),
    ("matrix: {arch: [resnet18, resnet18]}", "grid.yaml:3: matrix.arch[1]: the name 'resnet18' appears twice"),
    ("matrix: {arch: [res-net]}", "grid.yaml:3: matrix.arch[0]: the name 'res-net' may only use letters"),
    ("matrix: {arch: [[resnet18]]}", "grid.yaml:3: matrix.arch[0]: expected a scalar"),
    ("matrix: {arch: [{targets: [a]}]}", "grid.yaml:3: matrix.arch[0]: a mapping value needs a `name:`"),
    ("matrix: {arch: [resnet18], depth: [1, 2]}",
     "grid.yaml:3: matrix.depth: no `{depth}` in the spec uses it, so every case would be the same spec"),
    ("matrix: {arch: [resnet18], exclude: [{arhc: resnet18}]}",
     "grid.yaml:3: matrix.exclude[0]: 'arhc' is not a matrix key (the keys are: arch)"),
    ("matrix: {arch: [resnet18], exclude: [{arch: resnet50}]}",
     "grid.yaml:3: matrix.exclude[0]: 'resnet50' is not a value of arch (its values are: resnet18)"),
    ("matrix: {arch: [resnet18], exclude: [{arch: resnet18}]}",
     "grid.yaml:3: matrix: `exclude:` removes every combination"),
]


@pytest.mark.parametrize(("matrix", "message"), MATRIX_ERRORS, ids=[m for m, _ in MATRIX_ERRORS])
def test_a_malformed_matrix_is_one_error_at_its_line(tmp_path, matrix: str, message: str) -> None:
    path = write(tmp_path, edit(ONE_AXIS, "matrix: {arch: [resnet18, resnet34]}", matrix))
    with pytest.raises(SpecError) as err:
        load_cases(path)
    assert message in str(err.value)


ONE_AXIS = """\
robustgate: 1
name: grid
matrix: {arch: [resnet18, resnet34]}
model:
  arch: "{arch}"
  kwargs: {num_classes: 10}
  weights: train
  train: {on: train, epochs: 1}
  input: {size: [32, 32]}
datasets:
  train: {builtin: digits, domain: handwritten, part: train}
contracts:
  - accuracy: {on: train, min: 0.5}
"""


def test_an_error_inside_a_case_names_the_line_and_the_case(tmp_path) -> None:
    path = write(tmp_path, edit(ONE_AXIS, "[resnet18, resnet34]", "[resnet18, resnet43]"))
    with pytest.raises(SpecError) as err:
        load_cases(path)
    text = str(err.value)
    assert "grid.yaml:5: model.arch: unknown torchvision architecture 'resnet43'" in text
    assert "(in matrix case resnet43: arch=resnet43)" in text


def test_a_missing_field_and_a_list_inside_text_are_errors_at_their_use(tmp_path) -> None:
    path = write(tmp_path, edit(SPEC, '"{source.epochs}"', '"{source.epoch}"'))
    with pytest.raises(SpecError, match=r"(?s)grid.yaml:14: \{source.epoch\}: the source value 'handwritten' has no field "
                                        r"'epoch'.*\(in matrix case resnet18-handwritten: arch=resnet18, source=handwritten\)"):
        load_cases(path)
    path = write(tmp_path, edit(SPEC, '"{source}-train"', '"{source.targets}-train"'))
    with pytest.raises(SpecError, match=r"grid.yaml:14: \{source.targets\} is list here, which cannot be written inside text"):
        load_cases(path)


def test_a_renamed_key_keeps_its_line_for_errors(tmp_path) -> None:
    line = "  printed: {builtin: digits, domain: printed, part: test}\n"
    text = edit(SPEC, line, line + "  \"{source}-extra\": {builtin: digits, domain: printed, part: tset}\n")
    with pytest.raises(SpecError, match=r"grid.yaml:21: datasets.handwritten-extra.part: "):
        load_cases(write(tmp_path, text))


names = st.from_regex(r"[a-z]{1,2}[0-9]{1,3}", fullmatch=True)  # never a YAML keyword such as null or true


@settings(max_examples=60, deadline=None)
@given(
    axes=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.lists(names, min_size=1, max_size=3, unique=True),
                         min_size=1, max_size=3),
    data=st.data(),
)
def test_cases_are_the_product_less_the_exclusions_each_filled_with_its_values(tmp_path_factory, axes, data) -> None:
    """Property: every combination not excluded is one case, named by its values, with those values in its spec."""
    keys = list(axes)
    excluded = data.draw(st.lists(st.tuples(*(st.sampled_from(axes[k]) for k in keys)), max_size=2, unique=True))
    combinations = [c for c in itertools.product(*axes.values()) if c not in excluded]
    matrix = "\n".join(f"  {k}: [{', '.join(v)}]" for k, v in axes.items())
    if excluded:
        matrix += "\n  exclude:\n" + "\n".join("    - {" + ", ".join(f"{k}: {v}" for k, v in zip(keys, c)) + "}"
                                                for c in excluded)
    name = "-".join("{" + k + "}" for k in keys)
    text = edit(edit(edit(ONE_AXIS, "matrix: {arch: [resnet18, resnet34]}", "matrix:\n" + matrix), 'arch: "{arch}"', "arch: resnet18"), "name: grid", f"name: \"grid {name}\"")
    path = write(tmp_path_factory.mktemp("grid"), text)
    if not combinations:
        with pytest.raises(SpecError, match="removes every combination"):
            load_cases(path)
        return
    specs = load_cases(path)
    assert [s.case for s in specs] == ["-".join(c) for c in combinations]
    assert [s.name for s in specs] == ["grid " + "-".join(c) for c in combinations]


# ONE_AXIS with the matrix written in block style, so each value and rule has a line of its own
BLOCK = edit(ONE_AXIS, "matrix: {arch: [resnet18, resnet34]}", "matrix:\n  arch:\n    - resnet18\n    - [resnet34]")


def test_block_style_matrix_errors_point_at_the_value_and_the_rule(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"grid.yaml:6: matrix.arch\[1\]: expected a scalar"):
        load_cases(write(tmp_path, BLOCK))
    text = edit(BLOCK, "    - [resnet34]\n", "    - resnet34\n  exclude:\n    - arch: resnet34\n    - arch: resnet43\n")
    with pytest.raises(SpecError, match=r"grid.yaml:9: matrix.exclude\[1\]: 'resnet43' is not a value of arch"):
        load_cases(write(tmp_path, text))


def test_an_unquoted_placeholder_is_named_with_the_fix(tmp_path) -> None:
    with pytest.raises(SpecError) as err:
        load_cases(write(tmp_path, edit(edit(BLOCK, "    - [resnet34]", "    - resnet34"), 'arch: "{arch}"', "arch: {arch}")))
    assert "grid.yaml:4: matrix.arch: no `{arch}` in the spec uses it" in str(err.value)
    assert "line 8 has {arch} unquoted, which YAML reads as a mapping" in str(err.value)
    assert 'write "{arch}" (in quotes)' in str(err.value)


def test_keys_that_become_the_same_name_in_a_case_are_an_error(tmp_path) -> None:
    text = edit(SPEC, '  printed: {builtin: digits, domain: printed, part: test}\n', '  printed: {builtin: digits, domain: printed, part: test}\n'
                        '  "{source}": {builtin: digits, domain: printed, part: test}\n')
    with pytest.raises(SpecError) as err:
        load_cases(write(tmp_path, text))
    assert "grid.yaml:21: 'handwritten' and '{source}' both become 'handwritten' in this case" in str(err.value)
    assert "(the other is on line 19)" in str(err.value) and "(in matrix case resnet18-handwritten" in str(err.value)


def test_each_case_reports_its_own_lines(tmp_path) -> None:
    """Case x-y and case y-x rename two variants the other way round; each case's error names its own line."""
    text = edit(ONE_AXIS, "matrix: {arch: [resnet18, resnet34]}", "matrix: {a: [x, y], b: [y, x], exclude: [{a: x, b: x}, {a: y, b: y}]}")
    text = edit(text, 'arch: "{arch}"', "arch: resnet18") + "variants:\n  \"{a}1\": {ptq: {backend: x86}}\n  \"{b}1\": {ptq: {backend: [x86]}}\n"
    with pytest.raises(SpecError, match=r"(?s)grid.yaml:16: variants.y1.ptq.backend: .*\(in matrix case x-y"):
        load_cases(write(tmp_path, text))


def test_a_matrix_key_may_not_capture_a_variant_template(tmp_path) -> None:
    text = edit(edit(SPEC, "  arch: [resnet18, resnet34]\n", "  arch: [resnet18, resnet34]\n  ratio: [0.1]\n"), "pruned-{ratio}: {prune:", "pruned-{ratio}-{arch}: {prune:")
    with pytest.raises(SpecError, match=r"grid.yaml:23: variants.pruned-\{ratio\}-\{arch\}: \{ratio\} is both a matrix key"):
        load_cases(write(tmp_path, text))


def test_float_values_name_cases_as_written(tmp_path) -> None:
    text = edit(ONE_AXIS, "matrix: {arch: [resnet18, resnet34]}", "matrix: {lr: [0.00001, 0.1234567, 0.1234568]}")
    specs = load_cases(write(tmp_path, edit(edit(text, "epochs: 1}", 'epochs: 1, lr: "{lr}"}'), '"{arch}"', "resnet18")))
    assert [s.case for s in specs] == ["0.00001", "0.1234567", "0.1234568"]
    assert [s.model.train.lr for s in specs] == [0.00001, 0.1234567, 0.1234568]

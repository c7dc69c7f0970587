"""`robustgate schema`: the JSON Schema of spec files agrees with the parser where a schema can speak.

What it must never do is refuse a spec the parser accepts (an editor would underline a valid spec): the
shipped specs, generated specs and randomly broken specs that still load all validate. Where the parser's
problem is structural (an unknown key, a value of the wrong type, a number out of its range, a name outside a
closed set), the schema refuses the spec too, at the same key. Problems that need more than one value at a
time (references between datasets, cycles, class counts, required gates) are the parser's alone.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator, ValidationError
from test_bad_specs import FILES, expected_problems
from test_spec_mutations import mutated_specs
from test_spec_roundtrip import spec_dicts
from tiny_spec_edits import edit

from robustgate.errors import SpecError
from robustgate.spec import load_cases
from robustgate.spec.json_schema import spec_json_schema
from robustgate.spec.yamlmarks import load_yaml_with_lines

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "robustness_specs").glob("*.yaml"))
# The parser's wording for problems of one value at one key, which a JSON Schema states as well.
STRUCTURAL = re.compile(
    r"unknown key|missing required key|input should be (a valid|greater|less|'[^']*'(, '[^']*')*( or '[^']*')?( \(got|$))"
    r"|string should have at least|expected a mapping|expected a list|unsupported spec version"
)
PROPERTIES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = spec_json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def spec_data(text: str) -> Any:
    """A spec's YAML as the parser reads it (YAML 1.2 booleans, so `on:` stays a key; `${VAR}` kept as text)."""
    data, _ = load_yaml_with_lines(text, "spec.yaml")
    return data


def key_path(problem: str) -> tuple[str | int, ...]:
    """``contracts[0].accuracy.min: ...`` -> ("contracts", 0, "accuracy", "min")."""
    dotted = problem.split(": ", 1)[0]
    return tuple(int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", dotted))


def all_errors(errors: list[ValidationError]) -> Iterator[ValidationError]:
    for error in errors:
        yield error
        yield from all_errors(list(error.context or []))


def test_the_command_prints_a_draft_2020_12_schema() -> None:
    done = subprocess.run([sys.executable, "-m", "robustgate.cli", "schema"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert {"robustgate", "model", "datasets", "variants", "contracts", "matrix", "profiles"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_the_schema_lists_every_registered_kind(validator: Draft202012Validator) -> None:
    from robustgate.checks import contract_kinds
    from robustgate.compressors import compression_steps
    from robustgate.data.kinds import dataset_kinds

    properties = validator.schema["properties"]
    contracts = [option["required"][0] for option in written(written(properties["contracts"])["items"])["anyOf"]]
    steps = written(written(properties["variants"])["additionalProperties"])["properties"]
    assert contracts == contract_kinds.names() and list(steps) == compression_steps.names()
    datasets = written(written(properties["datasets"])["additionalProperties"])["anyOf"]
    assert len(datasets) == len(dataset_kinds.names())


def written(schema: dict[str, Any]) -> dict[str, Any]:
    """A value's schema without the matrix placeholder every value may also be."""
    placeholder = {"$ref": "#/$defs/Placeholder"}
    return schema["anyOf"][0] if schema.get("anyOf", [None])[-1] == placeholder else schema


@pytest.mark.parametrize("path", SHIPPED, ids=[path.name for path in SHIPPED])
def test_every_shipped_spec_validates(path: Path, validator: Draft202012Validator) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(spec_data(path.read_text()))]
    assert errors == []


def test_matrix_placeholders_are_accepted_where_values_go(validator: Draft202012Validator, tmp_path: Path) -> None:
    text = edit((ROOT / "tests" / "bad_specs" / "matrix_unknown_arch_in_one_case.yaml").read_text(), "resnet19", "resnet34", count=2)
    (tmp_path / "spec.yaml").write_text(text)
    assert len(load_cases(tmp_path / "spec.yaml")) == 2  # 'torchvision:{arch}' is resnet18, then resnet34
    assert list(validator.iter_errors(spec_data(text))) == []


def test_the_schema_also_refuses_what_its_patterns_and_lists_express(validator: Draft202012Validator) -> None:
    """Names outside torchvision's classifiers and the registered corruptions, devices, confidence levels, input
    sizes and names that cannot be test ids: the schema carries what the validators check of one value."""
    for name, key in [("unknown_device", ("device",)), ("confidence_percent", ("confidence",)),
                      ("unknown_corruption", ("datasets", "noisy", "corruption")), ("unknown_torchvision_arch", ("model", "arch")),
                      ("distill_unknown_student_arch", ("variants", "student", "distill", "student", "arch")),
                      ("input_size_too_small", ("model", "input", "size", 0)), ("variant_named_baseline", ("variants",)),
                      ("dataset_name_with_space", ("datasets",))]:
        errors = validator.iter_errors(spec_data((ROOT / "tests" / "bad_specs" / f"{name}.yaml").read_text()))
        assert key in {tuple(error.absolute_path) for error in all_errors(list(errors))}, name


@PROPERTIES
@given(data=spec_dicts())
def test_a_spec_the_parser_accepts_validates(data: dict[str, Any], validator: Draft202012Validator) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(spec_data(yaml.safe_dump(data)))]
    assert errors == []


@PROPERTIES
@given(text=mutated_specs())
def test_a_broken_spec_the_parser_still_accepts_validates(
    text: str, validator: Draft202012Validator, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("mutated") / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_cases(path, None)
    except SpecError:
        return  # the parser refuses it; a schema may or may not see why
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(spec_data(text))]
    assert errors == [], text


def structural(path: Path) -> list[tuple[int, str]] | None:
    """A corpus file's stated problems, where each is one a schema can state (None: some are not)."""
    try:
        problems = expected_problems(path)
        spec_data(path.read_bytes().decode("utf-8"))
    except (SpecError, UnicodeDecodeError):  # not YAML a schema could be given: the parser's alone
        return None
    return problems if all(STRUCTURAL.search(problem) for _, problem in problems) else None


STRUCTURAL_FILES = [path for path in FILES if structural(path)]


def test_the_corpus_has_structural_and_other_problems() -> None:
    assert len(STRUCTURAL_FILES) >= 30 and len(FILES) - len(STRUCTURAL_FILES) >= 30


@pytest.mark.parametrize("path", STRUCTURAL_FILES, ids=[path.stem for path in STRUCTURAL_FILES])
def test_a_structural_problem_of_the_corpus_is_refused_by_the_schema_at_its_key(
    path: Path, validator: Draft202012Validator
) -> None:
    errors = list(validator.iter_errors(spec_data(path.read_bytes().decode("utf-8"))))
    assert errors, f"the schema accepts {path.name}"
    found = {tuple(error.absolute_path) for error in all_errors(errors)}
    for _, problem in structural(path) or []:
        key = key_path(problem)
        # an unknown or missing key is reported on the mapping that holds it, or where it is
        assert key in found or key[:-1] in found, f"{problem}: the schema says {sorted(found, key=str)}"

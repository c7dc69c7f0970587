"""Matrix variants: a list under a templated name expands into one variant per value."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robustgate.errors import SpecError
from robustgate.spec import load_spec
from robustgate.spec.variant_templates import TemplateError, expand_template

HEAD = """\
robustgate: 1
model:
  arch: torchvision:resnet18
  weights: train
  train: {on: train}
  input: {size: [32, 32]}
datasets:
  train: {builtin: digits, domain: handwritten, part: train}
  test: {builtin: digits, domain: handwritten, part: test}
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + textwrap.dedent(text))
    return load_spec(path)


def test_a_list_under_a_template_expands_into_named_variants(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        variants:
          int8-{backend}: {ptq: {backend: [x86, qnnpack], calibrate: {on: train, samples: 64}}}
        contracts:
          - accuracy: {on: test, max_drop: 0.05}
        """,
    )
    assert list(spec.variants) == ["int8-x86", "int8-qnnpack"]
    assert [v.steps[0].params.backend for v in spec.variants.values()] == ["x86", "qnnpack"]
    assert all(v.steps[0].params.calibrate.samples == 64 for v in spec.variants.values())
    assert {v.line for v in spec.variants.values()} == {12}


def test_a_contract_can_name_the_template_for_all_its_variants(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        variants:
          int8-{backend}: {ptq: {backend: [x86, qnnpack]}}
          other: {ptq: {backend: x86}}
        contracts:
          - accuracy: {on: test, max_drop: 0.05, variants: [int8-{backend}]}
        """,
    )
    assert spec.contracts[0].variants == ("int8-x86", "int8-qnnpack")


def test_a_template_without_a_list_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        load(
            tmp_path,
            """
            variants:
              int8-{backend}: {ptq: {backend: x86}}
            contracts:
              - accuracy: {on: test, max_drop: 0.05}
            """,
        )
    assert "spec.yaml:12: variants.int8-{backend}: the name's {backend} needs exactly one `backend:` with a list" in str(err.value)


def test_a_bad_value_in_the_list_is_reported_at_the_variant(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        load(
            tmp_path,
            """
            variants:
              int8-{backend}: {ptq: {backend: [x86, tpu]}}
            contracts:
              - accuracy: {on: test, max_drop: 0.05}
            """,
        )
    assert "spec.yaml:12: variants.int8-{backend}.ptq.backend: input should be 'x86', 'fbgemm', 'qnnpack', 'onednn', 'pt2e', 'onnxruntime' or 'xnnpack'" in str(err.value)


@settings(max_examples=40, deadline=None)
@given(
    # unique as names show them (`:g`): 0.05 and 0.05000000000000001 name one variant, which parse refuses
    a=st.lists(st.floats(0.05, 0.95, allow_nan=False), min_size=1, max_size=4, unique_by=lambda x: f"{x:g}"),
    b=st.lists(st.integers(1, 9), min_size=1, max_size=3, unique=True),
)
def test_expansion_is_the_product_of_the_lists(a: list[float], b: list[int]) -> None:
    body = {"prune": {"ratio": a, "keep": ["conv1"], "finetune": {"epochs": b}}}
    expanded = expand_template("p-{ratio}-e{epochs}", body)
    assert len(expanded) == len(a) * len(b)
    assert len({name for name, _ in expanded}) == len(expanded)
    assert {(v["prune"]["ratio"], v["prune"]["finetune"]["epochs"]) for _, v in expanded} == {(x, y) for x in a for y in b}
    assert all(v["prune"]["keep"] == ["conv1"] for _, v in expanded)  # lists the name does not mention stay lists
    assert body["prune"]["ratio"] == a  # the template body is left as it was


def test_values_that_print_alike_are_refused_not_merged(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="variant name 'p-0.123457' is taken by another variant"):
        load(
            tmp_path,
            """
            variants:
              p-{ratio}: {prune: {method: l1, ratio: [0.1234567, 0.1234568]}}
            contracts:
              - accuracy: {on: test, max_drop: 0.05}
            """,
        )


def test_plain_names_are_left_alone() -> None:
    body = {"ptq": {"backend": "x86"}}
    assert expand_template("int8", body) == [("int8", body)]
    with pytest.raises(TemplateError, match="empty list"):
        expand_template("p-{ratio}", {"prune": {"ratio": []}})

"""Property tests: a valid spec written as YAML parses back into the same values, at the right lines.

Specs are generated as plain Python dicts, dumped with ``yaml.safe_dump`` and read with
:func:`robustgate.spec.load_spec`. A parsed spec dumped again from its validated parameters
(``model_dump(by_alias=True, exclude_defaults=False)``) parses to the same parameters.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustgate.data.corruptions import corruptions
from robustgate.spec import Spec, load_spec
from robustgate.spec.parse import ID_SAFE_NAME
from robustgate.spec.yamlmarks import SpecLoader

ROOT = Path(__file__).resolve().parents[2]

ID_SAFE = st.text(alphabet=string.ascii_letters + string.digits + "_.+-", min_size=1, max_size=8).filter(
    lambda s: ID_SAFE_NAME.match(s) is not None and s != "baseline"
)
PROBABILITY = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
GATES = ("min", "max_drop", "max_relative_drop")
BACKENDS = ("x86", "fbgemm", "qnnpack", "onednn")
PROPERTIES = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def dataset_bodies(draw: st.DrawFn, earlier: list[str]) -> dict[str, Any]:
    body: dict[str, Any]
    if not earlier or draw(st.booleans()):
        body = {"builtin": "digits", "domain": draw(st.sampled_from(["handwritten", "printed"]))}
        part = draw(st.sampled_from([None, "train", "test"]))
        if part is not None:
            body["part"] = part
            if draw(st.booleans()):
                body["split"] = draw(st.floats(min_value=0.05, max_value=0.95))
    else:
        body = {"from": draw(st.sampled_from(earlier))}  # only earlier names: never a cycle
        if draw(st.booleans()):
            body["corruption"] = draw(st.sampled_from(corruptions.names()))
            body["severity"] = draw(st.integers(1, 5))
    if draw(st.booleans()):
        body["samples"] = draw(st.integers(1, 5000))
    return body


@st.composite
def spec_dicts(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(ID_SAFE, min_size=1, max_size=4, unique=True))
    datasets: dict[str, Any] = {}
    for index, name in enumerate(names):
        datasets[name] = draw(dataset_bodies(names[:index]))

    model: dict[str, Any] = {"arch": "torchvision:resnet18", "kwargs": {"num_classes": 10}, "input": {"size": [32, 32]}}
    if draw(st.booleans()):
        model["weights"] = "train"
        model["train"] = {"on": draw(st.sampled_from(names)), "epochs": draw(st.integers(1, 50))}
    else:
        model["weights"] = "weights/model.pt"

    variants: dict[str, Any] = {}
    for name in draw(st.lists(ID_SAFE, max_size=3, unique=True)):
        ptq: dict[str, Any] = {"backend": draw(st.sampled_from(BACKENDS))}
        if draw(st.booleans()):
            ptq["calibrate"] = {"on": draw(st.sampled_from(names)), "samples": draw(st.integers(1, 1024))}
        variants[name] = {"ptq": ptq}

    contracts = []
    for _ in range(draw(st.integers(1, 4))):
        gates = draw(st.lists(st.sampled_from(GATES), min_size=1, max_size=3, unique=True))
        body: dict[str, Any] = {"on": draw(st.sampled_from(names))}
        body.update({gate: draw(PROBABILITY) for gate in gates})
        contract: dict[str, Any] = {"accuracy": body}
        if draw(st.booleans()):
            contract["variants"] = draw(st.lists(st.sampled_from(["baseline", *variants]), min_size=1, unique=True))
            if "baseline" in contract["variants"] and "min" not in body:
                body["min"] = draw(PROBABILITY)  # drop gates alone mean nothing on the baseline itself
        contracts.append(contract)

    spec: dict[str, Any] = {"robustgate": 1, "name": draw(ID_SAFE), "seed": draw(st.integers(0, 2**31 - 1))}
    spec["confidence"] = draw(st.one_of(st.just("point"), st.floats(min_value=0.5, max_value=1.0, exclude_max=True)))
    spec.update(model=model, datasets=datasets, variants=variants, contracts=contracts)
    return spec


def dump_and_load(data: dict[str, Any], path: Path) -> tuple[Spec, list[str]]:
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return load_spec(path), text.splitlines()


def key_on(lines: list[str], line: int, indent: int) -> Any:
    """The mapping key that starts ``line`` (1-based) at exactly ``indent`` spaces, read as the spec reader would."""
    text = lines[line - 1]
    assert text[:indent] == " " * indent and text[indent] != " ", f"line {line} is not at indent {indent}: {text!r}"
    (key,) = yaml.load(text.strip(), Loader=SpecLoader)
    return key


def redump(spec: Spec) -> dict[str, Any]:
    """The spec rebuilt from its validated parameters, every default written out."""

    def dump(params: Any) -> Any:
        return params.model_dump(mode="json", by_alias=True, exclude_defaults=False)

    contracts = []
    for contract in spec.contracts:
        entry: dict[str, Any] = {contract.kind: dump(contract.params)}
        if contract.variants is not None:
            entry["variants"] = list(contract.variants)
        contracts.append(entry)
    return {
        "robustgate": 1,
        "name": spec.name,
        "seed": spec.seed,
        "device": spec.device,
        "confidence": spec.confidence,
        "model": dump(spec.model),
        "datasets": {name: dump(entry.params) for name, entry in spec.datasets.items()},
        "variants": {name: {step.kind: dump(step.params) for step in v.steps} for name, v in spec.variants.items()},
        "contracts": contracts,
    }


def assert_same_params(a: Spec, b: Spec) -> None:
    assert (a.name, a.seed, a.device, a.confidence) == (b.name, b.seed, b.device, b.confidence)
    assert a.model == b.model
    assert {n: (e.kind, e.params) for n, e in a.datasets.items()} == {n: (e.kind, e.params) for n, e in b.datasets.items()}
    assert list(a.datasets) == list(b.datasets)
    assert {n: v.steps for n, v in a.variants.items()} == {n: v.steps for n, v in b.variants.items()}
    assert [(c.kind, c.params, c.variants, c.index) for c in a.contracts] == [
        (c.kind, c.params, c.variants, c.index) for c in b.contracts
    ]


@PROPERTIES
@given(data=spec_dicts())
def test_parsed_spec_carries_the_written_values(data: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    spec, lines = dump_and_load(data, tmp_path_factory.mktemp("roundtrip") / "spec.yaml")

    assert spec.name == data["name"]
    assert spec.seed == data["seed"]
    assert spec.confidence == data["confidence"]
    assert spec.model.weights == data["model"]["weights"]
    if "train" in data["model"]:
        assert spec.model.train is not None
        assert (spec.model.train.on, spec.model.train.epochs) == (data["model"]["train"]["on"], data["model"]["train"]["epochs"])
    else:
        assert spec.model.train is None

    assert list(spec.datasets) == list(data["datasets"])
    for name, body in data["datasets"].items():
        entry = spec.datasets[name]
        assert entry.name == name
        assert entry.kind == ("builtin" if "builtin" in body else "from")
        assert {key: value for key, value in entry.params.model_dump(by_alias=True).items() if key in body} == body
        assert key_on(lines, entry.line, indent=2) == name

    assert list(spec.variants) == list(data["variants"])
    for name, body in data["variants"].items():
        variant = spec.variants[name]
        assert [step.kind for step in variant.steps] == list(body)
        (step,) = variant.steps
        assert step.params.backend == body["ptq"]["backend"]
        calibrate = body["ptq"].get("calibrate")
        if calibrate is None:
            assert step.params.calibrate is None
        else:
            assert (step.params.calibrate.on, step.params.calibrate.samples) == (calibrate["on"], calibrate["samples"])
        assert key_on(lines, variant.line, indent=2) == name

    assert len(spec.contracts) == len(data["contracts"])
    for index, (contract, written) in enumerate(zip(spec.contracts, data["contracts"])):
        assert (contract.kind, contract.index) == ("accuracy", index)
        body = written["accuracy"]
        assert contract.params.on == body["on"]
        for gate in GATES:
            assert getattr(contract.params, gate) == body.get(gate)  # floats survive exactly
        expected = written.get("variants")
        assert contract.variants == (None if expected is None else tuple(expected))
        assert lines[contract.line - 1].startswith("- accuracy:")
    # every contract sits on its own line, in order
    assert [c.line for c in spec.contracts] == sorted({c.line for c in spec.contracts})


@PROPERTIES
@given(data=spec_dicts())
def test_dump_parse_redump_parse_is_identity(data: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("identity")
    first, _ = dump_and_load(data, folder / "first.yaml")
    second, _ = dump_and_load(redump(first), folder / "second.yaml")
    assert_same_params(first, second)
    third, _ = dump_and_load(redump(second), folder / "third.yaml")
    assert redump(third) == redump(second)


@PROPERTIES
@given(data=spec_dicts(), style=st.sampled_from([True, False, None]))
def test_flow_and_block_styles_parse_the_same(
    data: dict[str, Any], style: bool | None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("styles")
    block, _ = dump_and_load(data, folder / "block.yaml")
    other = folder / "other.yaml"
    other.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=style), encoding="utf-8")
    assert_same_params(block, load_spec(other))


def test_the_quickstart_spec_round_trips(tmp_path: Path) -> None:
    spec = load_spec(ROOT / "robustness_specs" / "quickstart.yaml")
    assert spec.name == "digits-quickstart"
    assert list(spec.datasets) == ["digits-train", "handwritten", "printed", "noisy", "washed-out"]
    assert [c.kind for c in spec.contracts] == ["accuracy", "accuracy", "shift", "corruptions", "attack", "latency"]
    assert spec.contracts[2].params.targets == ["printed", "noisy", "washed-out"]
    assert spec.contracts[3].params.severities == [1, 3, 5] and len(spec.contracts[3].params.names) == 15
    assert spec.contracts[4].kind == "attack" and spec.contracts[4].params.strengths == [2 / 255]
    again, _ = dump_and_load(redump(spec), tmp_path / "quickstart.yaml")
    assert_same_params(spec, again)

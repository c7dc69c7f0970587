"""A variant may be a model the team compressed itself: every PyTorch format loads into the spec's
classifier, computes what the saved model computes, is sized by its bytes on disk, and a foreign int8
graph is marked as having no autograd and no countable params or MACs, rather than given wrong ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from jsonschema import Draft202012Validator
from tiny_cnn import build

from robustgate.cache import ArtifactCache
from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.artifact import ArtifactParams, artifact_format
from robustgate.compressors.pipeline import BuiltModel, compress, measure
from robustgate.compressors.ptq import PTQParams
from robustgate.data.imageset import ImageSet
from robustgate.errors import CompressionError, SpecError
from robustgate.models.classifier import Classifier, Normalize
from robustgate.spec import load_spec
from robustgate.spec.json_schema import spec_json_schema
from robustgate.spec.yamlmarks import load_yaml_with_lines
from robustgate.spec.model import Step

artifact = compression_steps.get("artifact")
EXAMPLE = torch.zeros(2, 3, 16, 16)


def context(tmp_path: Path, train: ImageSet | None = None) -> StepContext:
    return StepContext(dataset=lambda name: train, default_data="digits-train", example=EXAMPLE, seed=0,  # type: ignore[arg-type,return-value]
                       progress=lambda _: None, spec_dir=tmp_path)


def spec_model() -> Classifier:
    """What the spec builds for its baseline: the tiny net at width 32 behind the input's normalisation."""
    torch.manual_seed(1)
    return Classifier(Normalize((0.5,) * 3, (0.25,) * 3), build(width=32)).eval()


def logits(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(images)


def test_each_pytorch_format_loads_and_computes_what_was_saved(trained_cnn: Classifier, digits, tmp_path: Path) -> None:
    images = digits[1].floats()[:64]
    net = trained_cnn.net
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    torch.jit.save(torch.jit.trace(net, trained_cnn.normalize(images[:2])), tmp_path / "scripted.pt")
    batch = {"input": {0: torch.export.Dim("batch")}}  # as a team exports for serving; a fixed batch is refused below
    torch.export.save(torch.export.export(net, (trained_cnn.normalize(images[:2]),), dynamic_shapes=batch), tmp_path / "exported.pt2")
    torch.export.save(torch.export.export(net, (trained_cnn.normalize(images[:2]),)), tmp_path / "fixed.pt2")
    torch.save(net, tmp_path / "module.pt")
    expected = logits(trained_cnn, images)
    for name, fmt in [("weights.pt", "state_dict"), ("scripted.pt", "torchscript"), ("exported.pt2", "export")]:
        assert artifact_format(tmp_path / name, None) == fmt
        loaded = artifact.apply(spec_model(), ArtifactParams(path=name), context(tmp_path))
        assert torch.allclose(logits(loaded, images), expected, atol=1e-5), name
        assert artifact.is_differentiable(loaded, context(tmp_path))  # float graphs keep autograd
    with pytest.raises(CompressionError, match="'fixed.pt2' runs on a batch of 2 but fails on a batch of 3") as info:
        artifact.apply(spec_model(), ArtifactParams(path="fixed.pt2"), context(tmp_path))
    assert "dynamic_shapes" in info.value.hint
    with pytest.raises(CompressionError, match="is a pickled module, and unpickling it runs code") as info:
        artifact.apply(spec_model(), ArtifactParams(path="module.pt", format="module"), context(tmp_path))
    assert "trusted: true" in info.value.hint
    trusted = artifact.apply(spec_model(), ArtifactParams(path="module.pt", trusted=True), context(tmp_path))
    assert torch.equal(logits(trusted, images), expected)


def test_a_state_dict_of_another_architecture_loads_with_arch_and_kwargs(trained_cnn: Classifier, tmp_path: Path) -> None:
    torch.save(trained_cnn.net.state_dict(), tmp_path / "wide.pt")
    narrow = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), build(width=16)).eval()  # the spec's own model
    with pytest.raises(CompressionError, match=r"does not fit the spec's model: '0.weight' has shape \[32, 3, 3, 3\]"):
        artifact.apply(narrow, ArtifactParams(path="wide.pt"), context(tmp_path))
    params = ArtifactParams(path="wide.pt", arch="tiny_cnn:build", kwargs={"num_classes": 10, "width": 32})
    loaded = artifact.apply(narrow, params, context(tmp_path))
    assert torch.equal(logits(loaded, EXAMPLE), logits(trained_cnn, EXAMPLE))


def test_a_raw_input_artifact_gets_unnormalised_images(trained_cnn: Classifier, digits, tmp_path: Path) -> None:
    """A team's artifact that normalises inside itself (input: raw) must not be normalised twice."""
    images = digits[1].floats()[:16]
    torch.jit.save(torch.jit.trace(trained_cnn, images[:2]), tmp_path / "whole.pt")  # normalisation inside
    raw = artifact.apply(spec_model(), ArtifactParams(path="whole.pt", input="raw"), context(tmp_path))
    assert torch.allclose(logits(raw, images), logits(trained_cnn, images), atol=1e-5)
    twice = artifact.apply(spec_model(), ArtifactParams(path="whole.pt"), context(tmp_path))
    assert not torch.allclose(logits(twice, images), logits(trained_cnn, images), atol=1e-2)


def test_an_int8_torchscript_artifact_is_sized_on_disk_and_has_no_autograd_or_counts(
    trained_cnn: Classifier, digits, tmp_path: Path
) -> None:
    """The team's own int8 model (here: torch.ao FX int8, traced to TorchScript) is what ships: its size is the
    file's, it has no autograd (attacks take the indirect legs), and params/MACs stay unknown, not zero."""
    train, test = digits
    ctx = context(tmp_path, train)
    int8 = compression_steps.get("ptq").apply(trained_cnn, PTQParams(calibrate={"on": "x", "samples": 64}), ctx)
    images = test.floats()[:64]
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(int8.net.quantized, trained_cnn.normalize(images[:2])), tmp_path / "int8.pt")
    parent = BuiltModel(trained_cnn, "parent", measure(trained_cnn, EXAMPLE), differentiable=True)
    built = compress(parent, (Step("artifact", ArtifactParams(path="int8.pt")),), ctx, ArtifactCache(tmp_path / "cache"), {},
                     fingerprint=lambda name: "")
    assert not built.differentiable
    assert built.size.bytes == (tmp_path / "int8.pt").stat().st_size < 0.5 * parent.size.bytes
    assert built.size.params is None and built.size.macs is None
    assert torch.equal(logits(built.model, images), logits(int8, images))  # the same kernels, through TorchScript
    # The cache key follows the file: a new artifact at the same path is a new model.
    key = built.key
    torch.jit.save(torch.jit.trace(trained_cnn.net, trained_cnn.normalize(images[:2])), tmp_path / "int8.pt")
    rebuilt = compress(parent, (Step("artifact", ArtifactParams(path="int8.pt")),), ctx, ArtifactCache(tmp_path / "cache"),
                       {}, fingerprint=lambda name: "")
    assert rebuilt.key != key and rebuilt.differentiable and rebuilt.size.macs is not None


def test_a_pt2e_int8_export_artifact_has_no_autograd_and_a_twin_of_its_own_graph(
    trained_cnn: Classifier, digits, tmp_path: Path
) -> None:
    """A team's PT2E int8 program saved with torch.export.save: its quantize ops stop gradients, and the protocol's
    twin is the PT2E twin of that very graph, so the white-box leg runs on it (no accept_missing needed)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    from robustgate.attacks.base import AttackSettings
    from robustgate.attacks.protocol import fake_quant_twin, has_autograd, robust_correct
    from robustgate.compressors.int8.lockstep import twin_fidelity

    train, test = digits
    images, labels = test.floats()[:64], torch.as_tensor(test.labels[:64])
    normalized = trained_cnn.normalize(train.floats()[:64])
    batch = ({0: torch.export.Dim("batch")},)
    quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(torch.export.export(trained_cnn.net, (normalized[:4],), dynamic_shapes=batch).module(), quantizer)
    prepared(normalized)
    torch.export.save(torch.export.export(convert_pt2e(prepared), (normalized[:4],), dynamic_shapes=batch), tmp_path / "int8.pt2")
    ctx = context(tmp_path, train)
    own = artifact.apply(trained_cnn, ArtifactParams(path="int8.pt2"), ctx)
    # its output carries a gradient, which its rounding zeroes: attacked as a model without autograd
    assert has_autograd(own, images[:2]) and not artifact.is_differentiable(own, ctx) and not artifact.counts_size(own, ctx)
    twin = fake_quant_twin(own, images[:2])
    assert float(twin_fidelity(twin, images).float().mean()) == 1.0  # the graph it mirrors is the one that runs
    result = robust_correct("pgd", AttackSettings(16 / 255, "Linf", 5, None, 1), own, trained_cnn, images, labels,
                            seed=0, queries=20, differentiable=False)
    assert result.legs[0] == "twin" and result.counts()["twin"] > 0


def test_an_artifact_that_gives_the_wrong_logits_fails_when_loaded(tmp_path: Path) -> None:
    torch.jit.save(torch.jit.script(build(num_classes=7)), tmp_path / "seven.pt")
    with pytest.raises(CompressionError, match=r"returns \[2, 7\] on the spec's input, the baseline \[2, 10\]"):
        artifact.apply(spec_model(), ArtifactParams(path="seven.pt"), context(tmp_path))
    with pytest.raises(CompressionError, match=r"artifact: 'absent.pt' does not exist"):
        artifact.apply(spec_model(), ArtifactParams(path="absent.pt"), context(tmp_path))


SPEC = """\
robustgate: 1
model: {arch: torchvision:resnet18, kwargs: {num_classes: 10}, weights: train, train: {on: train}, input: {size: [32, 32]}}
datasets: {train: {builtin: digits, domain: handwritten}}
variants:
  VARIANT
contracts:
  - accuracy: {on: train, min: 0.5}
"""


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("own: {artifact: model.tflite}", "variants.own.artifact: 'model.tflite' is for TensorFlow Lite, which this release of "
         "robustgate cannot run yet"),
        ("own: {artifact: {path: m.pt, kwargs: {width: 2}}}", "variants.own.artifact: kwargs: needs arch:"),
        ("own: {artifact: {path: m.pt2, format: export, arch: resnet18}}", "a export file carries its own architecture"),
        ("own: {prune: {method: l1, ratio: 0.5}, artifact: m.pt}", "variants.own.artifact: `artifact:` loads the variant's model "
         "from a file, so it comes first"),
        ("own: {artifact: {path: m.pt, format: tflite}}", "variants.own.artifact.format: input should be 'state_dict', 'module', "
         "'torchscript', 'export', 'onnx' or 'executorch'"),
    ],
)
def test_artifact_mistakes_are_refused_when_the_spec_is_read(tmp_path: Path, variant: str, message: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("VARIANT", variant))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert message in str(info.value)


def test_the_short_form_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("VARIANT", "own: {artifact: models/own.pt}\n  own-raw: {artifact: {path: own.pt2, input: raw}}"))
    variants = load_spec(path).variants
    assert variants["own"].steps == (Step("artifact", ArtifactParams(path="models/own.pt")),)
    assert variants["own-raw"].steps[0].params.input == "raw"
    # An editor's schema accepts both forms too (robustgate schema), and refuses a number for the path.
    validator = Draft202012Validator(spec_json_schema())
    data = lambda text: load_yaml_with_lines(text, "spec.yaml")[0]  # noqa: E731 (as the parser reads YAML)
    assert list(validator.iter_errors(data(path.read_text()))) == []
    assert list(validator.iter_errors(data(path.read_text().replace("models/own.pt", "5"))))

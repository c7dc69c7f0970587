"""ONNX artifacts run in ONNX Runtime: real exports of the trained tiny network, real ORT int8 kernels."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from onnx_artifacts import export_onnx, op_types, quantize_onnx

from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.artifact import ArtifactParams
from robustgate.errors import CompressionError
from robustgate.models.classifier import Classifier
from robustgate.runtimes.onnx import OnnxRuntimeNet

artifact = compression_steps.get("artifact")


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory, trained_cnn: Classifier, digits) -> Path:
    """fp32 (dynamic batch), the same graph with a fixed batch, and ORT's QDQ and QOperator int8 models of it."""
    folder = tmp_path_factory.mktemp("onnx")
    train, _ = digits
    example = trained_cnn.normalize(train.floats()[:2])
    fp32 = export_onnx(trained_cnn.net, example, folder / "fp32.onnx")
    export_onnx(trained_cnn.net, example, folder / "fixed.onnx", dynamic_batch=False)
    calibration = trained_cnn.normalize(train.floats()[:128])
    quantize_onnx(fp32, folder / "qdq.onnx", calibration)
    quantize_onnx(fp32, folder / "qop.onnx", calibration, operator_form=True)
    return folder


def context(folder: Path, train) -> StepContext:
    return StepContext(dataset=lambda name: train, default_data=None, example=torch.zeros(2, 3, 16, 16), seed=0,
                       progress=lambda _: None, spec_dir=folder)


def accuracy(model: Classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())


def test_fp32_and_int8_onnx_models_run_in_onnx_runtime(onnx_dir: Path, trained_cnn: Classifier, digits) -> None:
    train, test = digits
    images, labels = test.floats(), torch.as_tensor(test.labels)
    ctx = context(onnx_dir, train)
    fp32 = artifact.apply(trained_cnn, ArtifactParams(path="fp32.onnx"), ctx)
    assert isinstance(fp32.net, OnnxRuntimeNet)
    with torch.no_grad():
        torch.testing.assert_close(fp32(images), trained_cnn(images), rtol=1e-4, atol=1e-5)  # the same network
    reference = accuracy(trained_cnn, images, labels)
    assert op_types(onnx_dir / "qdq.onnx") >= {"QuantizeLinear", "DequantizeLinear", "Conv"}
    assert op_types(onnx_dir / "qop.onnx") >= {"QLinearConv"}
    for name in ("qdq.onnx", "qop.onnx"):
        int8 = artifact.apply(trained_cnn, ArtifactParams(path=name), ctx)
        with torch.no_grad():
            assert not torch.allclose(int8(images), fp32(images), atol=1e-4)  # int8 kernels ran, not the fp32 graph
        assert accuracy(int8, images, labels) >= reference - 0.03
        assert not artifact.is_differentiable(int8, ctx) and not artifact.counts_size(int8, ctx)
        assert artifact.stored_bytes(ArtifactParams(path=name), ctx) == (onnx_dir / name).stat().st_size
    # the runtime runs on torch's thread count, so robustgate's pinning (latency, xdist workers) pins it too
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.no_grad():
            fp32(images[:4])
        assert fp32.net._sessions[1].get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(previous)


def test_a_copy_runs_its_own_session_and_a_fixed_batch_model_is_refused(onnx_dir: Path, trained_cnn: Classifier, digits) -> None:
    train, test = digits
    ctx = context(onnx_dir, train)
    model = artifact.apply(trained_cnn, ArtifactParams(path="fp32.onnx"), ctx)
    twin = copy.deepcopy(model)  # what evaluation does before a trial run
    images = test.floats()[:5]
    with torch.no_grad():
        assert torch.equal(twin(images), model(images)) and twin.net._sessions is not model.net._sessions
    with pytest.raises(CompressionError, match=r"runs on a batch of 2 but fails on a batch of 3: RuntimeError: ONNX Runtime: "
                       r"Got invalid dimensions.*index: 0 Got: 3 Expected: 2") as refused:
        artifact.apply(trained_cnn, ArtifactParams(path="fixed.onnx"), ctx)
    assert "torch.onnx.export" in refused.value.hint and "Dim('batch')" in refused.value.hint


def test_external_weights_are_part_of_its_size_and_its_cache_key(onnx_dir: Path, trained_cnn: Classifier, digits, tmp_path: Path) -> None:
    import onnx

    train, test = digits
    onnx.save_model(onnx.load(str(onnx_dir / "fp32.onnx")), str(tmp_path / "big.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="big.weights", size_threshold=1024)
    ctx, params = context(tmp_path, train), ArtifactParams(path="big.onnx")
    weights = tmp_path / "big.weights"
    assert weights.stat().st_size > 0.8 * sum(p.numel() * 4 for p in trained_cnn.parameters())  # the weights live there
    assert artifact.stored_bytes(params, ctx) == (tmp_path / "big.onnx").stat().st_size + weights.stat().st_size
    model = artifact.apply(trained_cnn, params, ctx)
    with torch.no_grad():
        torch.testing.assert_close(model(test.floats()[:8]), trained_cnn(test.floats()[:8]), rtol=1e-4, atol=1e-5)
    key = artifact.external_inputs(params, ctx)
    assert len(key) == 2
    data = bytearray(weights.read_bytes())
    data[-4:] = b"\0\0\0\0"  # retrained weights, same graph file: another artifact
    weights.write_bytes(bytes(data))
    assert artifact.external_inputs(params, ctx) != key


def test_onnx_is_told_from_the_suffix_and_takes_no_architecture() -> None:
    with pytest.raises(ValueError, match="a onnx file carries its own architecture"):
        ArtifactParams(path="model.onnx", arch="resnet18")
    assert ArtifactParams(path="model.pte").format is None  # an ExecuTorch program: told from the suffix when loaded
    with pytest.raises(ValueError, match="a executorch file carries its own architecture"):
        ArtifactParams(path="model.pte", arch="resnet18")

"""`ptq: {backend: onnxruntime}`: robustgate's model exported and quantized by ONNX Runtime's static quantizer."""

from __future__ import annotations

import pytest
import torch

from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.ptq import PTQParams
from robustgate.models.classifier import Classifier
from robustgate.runtimes.onnx import OnnxRuntimeNet

ptq = compression_steps.get("ptq")


def test_onnx_runtime_quantizes_on_the_calibration_images_and_runs_int8_kernels(trained_cnn: Classifier, digits) -> None:
    import onnx

    train, test = digits
    images, labels = test.floats(), torch.as_tensor(test.labels)
    ctx = StepContext(dataset=lambda name: train, default_data="digits-train", example=torch.zeros(2, 3, 16, 16), seed=0,
                      progress=lambda _: None)
    params = PTQParams(backend="onnxruntime", calibrate={"on": "digits-train", "samples": 128})
    int8 = ptq.apply(trained_cnn, params, ctx)
    assert isinstance(int8.net, OnnxRuntimeNet)
    assert not ptq.is_differentiable(int8, ctx) and not ptq.counts_size(int8, ctx)
    graph = onnx.load_from_string(int8.net.source).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in graph.node}
    with torch.no_grad():
        logits, reference = int8(images), trained_cnn(images)
    assert not torch.allclose(logits, reference, atol=1e-4)  # int8 arithmetic, not the fp32 graph
    agreement = float((logits.argmax(1) == reference.argmax(1)).float().mean())
    accuracy, fp32 = (float((out.argmax(1) == labels).float().mean()) for out in (logits, reference))
    assert agreement >= 0.97 and accuracy >= fp32 - 0.03
    restored = ptq.restore(trained_cnn, params, ptq.state(int8), ctx)
    with torch.no_grad():
        assert torch.equal(restored(images), logits)
    given = PTQParams(backend="onnxruntime", observer="histogram", calibrate={"on": "digits-train", "samples": 128})
    assert ptq.apply(trained_cnn, given, ctx).net.source != int8.net.source  # ORT's percentile, not its default min/max


def test_onnx_runtime_quantization_takes_no_torch_ao_method() -> None:
    with pytest.raises(ValueError, match="backend: onnxruntime exports the model to ONNX and quantizes it statically"):
        PTQParams(backend="onnxruntime", method="fx")


def test_a_calibration_that_onnx_runtime_cannot_read_is_one_clear_error(digits) -> None:
    from tiny_cnn import build

    from robustgate.errors import CompressionError
    from robustgate.models.classifier import Normalize

    train, _ = digits
    dead = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), build(width=8)).eval()
    with torch.no_grad():  # every activation is 1e9 on every image: float32 has no 2,048 histogram bins across it
        for name, parameter in dead.named_parameters():
            parameter.fill_(1e9 if name.endswith("bias") else 0.0)
    ctx = StepContext(dataset=lambda name: train, default_data="digits-train", example=torch.zeros(2, 3, 16, 16), seed=0,
                      progress=lambda _: None)
    params = PTQParams(backend="onnxruntime", observer="histogram", calibrate={"on": "digits-train", "samples": 32})
    with pytest.raises(CompressionError, match=r"ONNX Runtime's static quantizer failed \(histogram calibration\)") as refused:
        ptq.apply(dead, params, ctx)
    assert "observer: minmax" in refused.value.hint

"""The twin of an ONNX graph: the graph computed by torch ops, in lockstep with ONNX Runtime, on real exports of the
trained tiny network and ORT's real int8 kernels."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx_artifacts import export_onnx, quantize_onnx

from robustgate.attacks.base import AttackSettings
from robustgate.attacks.protocol import IncompleteProtocol, fake_quant_twin, robust_correct
from robustgate.compressors.int8.lockstep import twin_fidelity
from robustgate.compressors.int8.twin import NoTwin
from robustgate.models.classifier import Classifier
from robustgate.runtimes import onnx_ops, onnx_qlinear_ops  # noqa: F401  (registers ORT's fused int8 operators)
from robustgate.runtimes.onnx import OnnxRuntimeNet


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory, trained_cnn: Classifier, digits) -> dict[str, Classifier]:
    """The trained tiny network as fp32 ONNX, and ORT's QDQ and QOperator int8 models of it, each run in ORT."""
    folder = tmp_path_factory.mktemp("twin")
    train, _ = digits
    calibration = trained_cnn.normalize(train.floats()[:128])
    fp32 = export_onnx(trained_cnn.net, calibration[:2], folder / "fp32.onnx")
    quantize_onnx(fp32, folder / "qdq.onnx", calibration)
    quantize_onnx(fp32, folder / "qop.onnx", calibration, operator_form=True)
    return {name: trained_cnn.with_net(OnnxRuntimeNet(folder / f"{name}.onnx")).eval() for name in ("fp32", "qdq", "qop")}


def input_gradient(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    x = images.clone().requires_grad_(True)
    return torch.autograd.grad(model(x).logsumexp(1).sum(), x)[0]


def test_the_twin_of_an_fp32_export_is_its_torch_parent(graphs, trained_cnn: Classifier, digits) -> None:
    images = digits[1].floats()[:64]
    twin = fake_quant_twin(graphs["fp32"], images[:2])
    assert len(twin.net.twin.snaps) == 0  # no int8 codes: only the logits are compared
    with torch.no_grad():
        torch.testing.assert_close(twin.net.twin(twin.normalize(images)), trained_cnn(images), rtol=1e-4, atol=1e-5)
    assert bool(twin_fidelity(twin, images).all())
    # the same function has the same input gradient: a white-box attack through the twin is one on the parent
    torch.testing.assert_close(input_gradient(twin, images[:8]), input_gradient(trained_cnn, images[:8]), rtol=1e-3, atol=1e-6)


def test_the_twin_of_a_qdq_model_follows_ort_int8_codes_layer_by_layer(graphs, trained_cnn: Classifier, digits) -> None:
    images, labels = digits[1].floats(), torch.as_tensor(digits[1].labels)
    int8 = graphs["qdq"]
    twin = fake_quant_twin(int8, images[:2])
    optimized = onnx.load_from_string(int8.net.optimized_graph()).graph.node  # the graph ORT runs: QDQ groups fused
    convolutions = {node.output[0] for node in optimized if node.op_type == "QLinearConv"}
    assert convolutions and convolutions <= {snap.name for snap in twin.net.twin.snaps}  # a rounding point at each fused int8 conv
    with torch.no_grad():
        torch.testing.assert_close(twin(images), int8(images), rtol=0, atol=1e-5)  # ORT's logits forward
    assert float(twin_fidelity(twin, images).float().mean()) >= 0.99
    gradient = input_gradient(twin, images[:8])
    assert torch.isfinite(gradient).all() and (gradient != 0).float().mean() > 0.5
    # the white-box leg through the twin breaks images that ONNX Runtime itself then gets wrong
    result = robust_correct("pgd", AttackSettings(16 / 255, "Linf", 5, None, 1), int8, trained_cnn, images[:48], labels[:48],
                            seed=0, queries=50, differentiable=False)
    assert result.legs[0] == "twin" and result.twin_agreement is not None and result.twin_agreement >= 0.99
    assert result.counts()["twin"] > 0


def test_the_twin_of_a_qoperator_model_mirrors_ort_fused_int8_operators(graphs, digits) -> None:
    images = digits[1].floats()
    twin = fake_quant_twin(graphs["qop"], images[:2])  # QLinearConv, QGemm, ... computed as dequantize-op-quantize
    assert len(twin.net.twin.snaps) > 0 and float(twin_fidelity(twin, images).float().mean()) >= 0.99


def test_a_twin_that_computes_another_op_is_caught_by_its_agreement(graphs, digits, monkeypatch: pytest.MonkeyPatch) -> None:
    images = digits[1].floats()[:64]
    convolution = onnx_ops.ONNX_OPS["QLinearConv"]
    monkeypatch.setitem(onnx_ops.ONNX_OPS, "QLinearConv", lambda inputs, attrs: [convolution(inputs, attrs)[0] + 3])
    twin = fake_quant_twin(graphs["qdq"], images[:2])
    assert float(twin_fidelity(twin, images).float().mean()) < 0.5  # codes 3 steps off: the tally does not pass them


def test_a_graph_with_an_operator_the_twin_does_not_compute_fails_closed(
    graphs, trained_cnn: Classifier, digits, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, labels = digits[1].floats()[:16], torch.as_tensor(digits[1].labels[:16])
    monkeypatch.delitem(onnx_ops.ONNX_OPS, "QLinearConv")
    with pytest.raises(NoTwin, match="does not compute the operator QLinearConv"):
        fake_quant_twin(graphs["qdq"], images[:2])
    with pytest.raises(IncompleteProtocol, match="twin leg.*QLinearConv"):
        robust_correct("pgd", AttackSettings(8 / 255, "Linf", 2, None, 1), graphs["qdq"], trained_cnn, images, labels,
                       seed=0, queries=10, differentiable=False)


def one_node_session(node: onnx.NodeProto, inputs: list, output_type: int):
    import onnxruntime

    graph = helper.make_graph(
        [node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", output_type, None)],
        initializer=[onnx.numpy_helper.from_array(value, name) for name, value in inputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@settings(max_examples=25, deadline=None)
@given(
    scale=st.floats(1e-3, 1.0), zero_point=st.integers(-20, 20),
    values=st.lists(st.floats(-200.0, 200.0, allow_nan=False, width=32), min_size=1, max_size=16),
)
def test_quantize_linear_rounds_and_saturates_as_onnx_runtime_does(scale: float, zero_point: int, values: list[float]) -> None:
    # values on exact half steps too: ONNX rounds them to even, as torch.round does
    x = np.array(values + [(k + 0.5) * scale for k in range(-3, 3)], dtype=np.float32)
    scale_array, zero_array = np.array(scale, dtype=np.float32), np.array(zero_point, dtype=np.int8)
    session = one_node_session(helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"]),
                               [("s", scale_array), ("z", zero_array)], TensorProto.INT8)
    expected = session.run(None, {"x": x})[0]
    got = onnx_ops.ONNX_OPS["QuantizeLinear"](
        [torch.from_numpy(x), torch.from_numpy(scale_array), torch.from_numpy(zero_array)], {"robustgate_code_type": TensorProto.INT8},
    )[0]
    np.testing.assert_array_equal(got.numpy().astype(np.int8), expected)
    back = onnx_ops.ONNX_OPS["DequantizeLinear"]([got, torch.from_numpy(scale_array), torch.from_numpy(zero_array)], {})[0]
    np.testing.assert_allclose(back.numpy(), (expected.astype(np.float32) - zero_point) * scale_array, rtol=1e-6)


def test_quantize_linear_passes_a_straight_through_gradient_inside_the_code_range() -> None:
    x = torch.tensor([0.0, 1.0, 500.0], requires_grad=True)
    codes = onnx_ops.ONNX_OPS["QuantizeLinear"]([x, torch.tensor(0.5), torch.tensor(0, dtype=torch.int8)],
                                                {"robustgate_code_type": TensorProto.INT8})[0]
    (gradient,) = torch.autograd.grad(codes.sum(), x)
    assert gradient.tolist() == [2.0, 2.0, 0.0]  # 1/scale inside; zero where 500/0.5 saturates at 127


def test_an_attribute_value_the_twin_does_not_compute_is_refused_not_approximated() -> None:
    with pytest.raises(onnx_ops.UnsupportedOp, match="auto_pad=SAME_UPPER"):
        onnx_ops.ONNX_OPS["Conv"]([torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3)], {"auto_pad": "SAME_UPPER"})

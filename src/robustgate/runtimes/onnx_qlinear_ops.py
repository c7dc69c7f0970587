"""ONNX Runtime's fused int8 operators, computed with differentiable torch ops for the twin (``onnx_twin.py``).

ONNX Runtime rewrites a QDQ graph before it runs it: DequantizeLinear -> Conv -> QuantizeLinear becomes one
QLinearConv, a Gemm becomes com.microsoft's QGemm, and so on; a QOperator graph holds those operators already.
The fused kernels accumulate in integers and requantize once, which rounds differently now and then from the
QDQ graph's float reading (measured on a ResNet-18: up to 3 output steps on 11% of the images), so the twin
mirrors the graph ORT actually runs. Each operator here dequantizes its inputs, computes the float operation, and
quantizes the result onto its output grid (codes as floats, straight-through gradient). ``CODE_OUTPUTS`` says, per
operator, which input holds the output's zero point (its element type is the code range).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from robustgate.runtimes.onnx_ops import ONNX_OPS, UnsupportedOp, convolution, dequantize, gemm, onnx_op, optional, quantize

CODE_OUTPUTS = {
    "QuantizeLinear": 2, "QLinearConv": 7, "QLinearMatMul": 7, "QGemm": 8, "QLinearAdd": 7, "QLinearMul": 7,
    "QLinearSigmoid": 4, "QLinearLeakyRelu": 4, "QLinearGlobalAveragePool": 4, "QLinearConcat": 1,
}
"""Operators whose output is integer codes -> the index of the input holding the output's zero point."""

CONTRIB_OPS = frozenset({"QGemm", "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
                         "QLinearGlobalAveragePool", "QLinearConcat", "FusedConv"})
"""The com.microsoft operators the twin computes (ORT's CPU provider writes them when it optimises a graph)."""


def _code_type(attrs: dict[str, Any]) -> int:
    return int(attrs.get("robustgate_code_type", 2))


def _requantized(value: torch.Tensor, inputs: list[Any], scale_at: int, attrs: dict[str, Any]) -> list[Any]:
    return [quantize(value, inputs[scale_at], optional(inputs, scale_at + 1), _code_type(attrs))]


@onnx_op("QLinearConv")
def _qlinear_conv(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x = dequantize(inputs[0], inputs[1], inputs[2])
    weight = dequantize(inputs[3], inputs[4], inputs[5], axis=0)  # per output channel
    bias = optional(inputs, 8)
    if bias is not None:  # int32, on the grid of x_scale * w_scale
        bias = bias.float() * inputs[1].float() * inputs[4].float()
    return _requantized(convolution(x, weight, bias, attrs), inputs, 6, attrs)


@onnx_op("QLinearMatMul")
def _qlinear_matmul(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    a = dequantize(inputs[0], inputs[1], inputs[2])
    b = dequantize(inputs[3], inputs[4], inputs[5], axis=-1)  # per output column
    return _requantized(a @ b, inputs, 6, attrs)


@onnx_op("QGemm")
def _qgemm(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    a = dequantize(inputs[0], inputs[1], inputs[2])
    b = dequantize(inputs[3], inputs[4], inputs[5], axis=0 if attrs.get("transB", 0) else 1)  # per output column
    bias = optional(inputs, 6)
    if bias is not None:
        bias = bias.float() * inputs[1].float() * inputs[4].float()
    out = gemm(a, b, bias, {**attrs, "beta": 1.0})
    if optional(inputs, 7) is None:  # no output scale: a float result
        return [out]
    return _requantized(out, inputs, 7, attrs)


def _binary(function: Any) -> Any:
    def apply(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
        a, b = dequantize(inputs[0], inputs[1], inputs[2]), dequantize(inputs[3], inputs[4], inputs[5])
        return _requantized(function(a, b), inputs, 6, attrs)

    return apply


ONNX_OPS["QLinearAdd"], ONNX_OPS["QLinearMul"] = _binary(torch.add), _binary(torch.mul)


def _unary(function: Any) -> Any:
    def apply(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
        return _requantized(function(dequantize(inputs[0], inputs[1], inputs[2]), attrs), inputs, 3, attrs)

    return apply


ONNX_OPS["QLinearSigmoid"] = _unary(lambda x, attrs: torch.sigmoid(x))
ONNX_OPS["QLinearLeakyRelu"] = _unary(lambda x, attrs: F.leaky_relu(x, attrs.get("alpha", 0.01)))


@onnx_op("QLinearGlobalAveragePool")
def _qlinear_global_average(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x = dequantize(inputs[0], inputs[1], inputs[2])
    dims = tuple(range(1, x.dim() - 1)) if attrs.get("channels_last", 0) else tuple(range(2, x.dim()))
    return _requantized(x.mean(dim=dims, keepdim=True), inputs, 3, attrs)


@onnx_op("QLinearConcat")
def _qlinear_concat(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    parts = [dequantize(inputs[i], inputs[i + 1], inputs[i + 2]) for i in range(2, len(inputs), 3)]
    return _requantized(torch.cat(parts, dim=attrs["axis"]), inputs, 0, attrs)


# com.microsoft's FusedConv: a float Conv and its activation in one kernel (ORT fuses them in graphs it optimises)
FUSED_ACTIVATIONS = {
    "Relu": lambda x, p: F.relu(x), "Sigmoid": lambda x, p: torch.sigmoid(x), "Tanh": lambda x, p: torch.tanh(x),
    "LeakyRelu": lambda x, p: F.leaky_relu(x, p[0] if p else 0.01), "Clip": lambda x, p: x.clamp(p[0], p[1]),
    "HardSigmoid": lambda x, p: (p[0] * x + p[1]).clamp(0.0, 1.0),
}


@onnx_op("FusedConv")
def _fused_conv(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    out = convolution(inputs[0], inputs[1], optional(inputs, 2), attrs)
    if optional(inputs, 3) is not None:
        out = out + inputs[3]
    activation = attrs.get("activation")
    if activation is None:
        return [out]
    if activation not in FUSED_ACTIVATIONS:
        raise UnsupportedOp(f"FusedConv with activation {activation}")
    return [FUSED_ACTIVATIONS[activation](out, list(attrs.get("activation_params", [])))]

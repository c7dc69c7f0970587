"""ONNX operators computed with differentiable torch ops, for the twin of an ONNX model (``onnx_twin.py``).

Written here because no maintained converter covers quantized graphs: onnx2torch 1.5.15 (the newest) has no
QuantizeLinear/DequantizeLinear, no opset-18 ReduceMean (the opset torch.onnx's exporter writes), and wants a
Conv's weights as initializers, where a QDQ graph feeds them through DequantizeLinear. The table holds the ops
image classifiers exported by torch.onnx, tf2onnx and ONNX Runtime's quantizer use; a graph with any other op has
no twin (:class:`UnsupportedOp`), which the attack protocol reports as its missing twin leg.

QuantizeLinear yields the integer codes as floats, rounded half to even as ONNX rounds, with a straight-through
gradient inside the code range (zero outside it, where the clamp saturates); DequantizeLinear maps codes back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

Op = Callable[[list[Any], dict[str, Any]], list[Any]]
"""An operator: its inputs (tensors, or None where an optional input is left out) and attributes -> its outputs."""

# The code range of each zero-point element type (onnx.TensorProto numbers); uint8 is ONNX's default.
CODE_RANGES = {2: (0, 255), 3: (-128, 127), 4: (0, 65535), 5: (-32768, 32767), 21: (0, 15), 22: (-8, 7)}


class UnsupportedOp(Exception):
    """The graph uses an ONNX operator (or an attribute value) the twin does not compute."""


ONNX_OPS: dict[str, Op] = {}


def onnx_op(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        for name in names:
            ONNX_OPS[name] = function
        return function

    return register


def _along(value: torch.Tensor, axis: int, rank: int) -> torch.Tensor:
    """A per-axis scale or zero point shaped to broadcast along ``axis`` of a rank-``rank`` tensor."""
    if value.dim() == 0 or value.numel() == 1:
        return value.reshape(())
    shape = [1] * rank
    shape[axis % rank] = -1
    return value.reshape(shape)


def quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | None, code_type: int, axis: int = 1) -> torch.Tensor:
    """``x`` on an int8 (or other integer) grid, as float codes: rounded half to even, then shifted by the zero point
    (ONNX's order: it decides ties), then saturated. The gradient of x / scale passes straight through the rounding,
    and is zero where the code saturates."""
    low, high = CODE_RANGES[code_type]
    scaled = x / _along(scale.float(), axis, x.dim())
    shift = _along(zero_point.float(), axis, x.dim()) if zero_point is not None else 0.0
    codes = scaled + (torch.round(scaled) - scaled).detach() + shift
    return codes.clamp(low, high)


def dequantize(codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | None, axis: int = 1) -> torch.Tensor:
    codes = codes.float()
    shifted = codes - _along(zero_point.float(), axis, codes.dim()) if zero_point is not None else codes
    return shifted * _along(scale.float(), axis, codes.dim())


def optional(inputs: list[Any], index: int) -> Any:
    return inputs[index] if len(inputs) > index else None


@onnx_op("QuantizeLinear")
def _quantize(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [quantize(inputs[0], inputs[1], optional(inputs, 2), attrs.get("robustgate_code_type", 2), attrs.get("axis", 1))]


@onnx_op("DequantizeLinear")
def _dequantize(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [dequantize(inputs[0], inputs[1], optional(inputs, 2), attrs.get("axis", 1))]


def _spatial_padding(pads: list[int], rank: int) -> tuple[list[int], list[int] | None]:
    """ONNX's [begin..., end...] pads as a symmetric padding for torch, or an explicit F.pad list when uneven."""
    begins, ends = pads[:rank], pads[rank:]
    if begins == ends:
        return begins, None
    explicit: list[int] = []
    for begin, end in zip(reversed(begins), reversed(ends), strict=True):
        explicit += [begin, end]
    return [0] * rank, explicit


def _no_auto_pad(attrs: dict[str, Any], op: str) -> None:
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise UnsupportedOp(f"{op} with auto_pad={attrs['auto_pad']}")


@onnx_op("Conv")
def _conv(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [convolution(inputs[0], inputs[1], optional(inputs, 2), attrs)]


def convolution(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, attrs: dict[str, Any]) -> torch.Tensor:
    rank = weight.dim() - 2
    if rank not in (1, 2, 3):
        raise UnsupportedOp(f"Conv over {rank} dimensions")
    _no_auto_pad(attrs, "Conv")
    padding, explicit = _spatial_padding(attrs.get("pads", [0] * 2 * rank), rank)
    if explicit is not None:
        x = F.pad(x, explicit)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
    return conv(x, weight, bias, attrs.get("strides", 1), padding, attrs.get("dilations", 1), attrs.get("group", 1))


@onnx_op("Gemm")
def _gemm(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [gemm(inputs[0], inputs[1], optional(inputs, 2), attrs)]


def gemm(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None, attrs: dict[str, Any]) -> torch.Tensor:
    a = a.transpose(0, 1) if attrs.get("transA", 0) else a
    b = b.transpose(0, 1) if attrs.get("transB", 0) else b
    out = attrs.get("alpha", 1.0) * (a @ b)
    return out if c is None else out + attrs.get("beta", 1.0) * c


def _pool_of(average: bool) -> Op:
    def pool(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
        x, kernel = inputs[0], attrs["kernel_shape"]
        rank = len(kernel)
        name = "AveragePool" if average else "MaxPool"
        _no_auto_pad(attrs, name)
        if rank != 2 or attrs.get("dilations", [1, 1]) != [1, 1]:
            raise UnsupportedOp(f"{name} over {rank} dimensions or with dilations")
        padding, explicit = _spatial_padding(attrs.get("pads", [0] * 2 * rank), rank)
        strides, ceil = attrs.get("strides", [1] * rank), bool(attrs.get("ceil_mode", 0))
        if average:
            if explicit is not None:
                raise UnsupportedOp("AveragePool with uneven padding")
            return [F.avg_pool2d(x, kernel, strides, padding, ceil, bool(attrs.get("count_include_pad", 0)))]
        if explicit is not None:
            x = F.pad(x, explicit, value=-math.inf)
        return [F.max_pool2d(x, kernel, strides, padding, 1, ceil)]

    return pool


ONNX_OPS["MaxPool"], ONNX_OPS["AveragePool"] = _pool_of(False), _pool_of(True)


@onnx_op("GlobalAveragePool")
def _global_average(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [inputs[0].mean(dim=tuple(range(2, inputs[0].dim())), keepdim=True)]


@onnx_op("GlobalMaxPool")
def _global_max(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [inputs[0].amax(dim=tuple(range(2, inputs[0].dim())), keepdim=True)]


@onnx_op("ReduceMean")
def _reduce_mean(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x = inputs[0]
    axes = inputs[1].tolist() if len(inputs) > 1 and inputs[1] is not None else attrs.get("axes")  # input from opset 18
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(x.dim()))
    return [x.mean(dim=tuple(axes), keepdim=bool(attrs.get("keepdims", 1)))]


@onnx_op("BatchNormalization")
def _batch_norm(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x, scale, bias, mean, var = inputs[:5]
    return [F.batch_norm(x, mean, var, scale, bias, False, 0.0, attrs.get("epsilon", 1e-5))]


@onnx_op("Relu")
def _relu(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [F.relu(inputs[0])]


@onnx_op("LeakyRelu")
def _leaky_relu(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [F.leaky_relu(inputs[0], attrs.get("alpha", 0.01))]


@onnx_op("Sigmoid")
def _sigmoid(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [torch.sigmoid(inputs[0])]


@onnx_op("Tanh")
def _tanh(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [torch.tanh(inputs[0])]


@onnx_op("HardSigmoid")
def _hard_sigmoid(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [(attrs.get("alpha", 0.2) * inputs[0] + attrs.get("beta", 0.5)).clamp(0.0, 1.0)]


@onnx_op("HardSwish")
def _hard_swish(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [F.hardswish(inputs[0])]


@onnx_op("Clip")
def _clip(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    low = inputs[1] if len(inputs) > 1 and inputs[1] is not None else attrs.get("min")  # attributes before opset 11
    high = inputs[2] if len(inputs) > 2 and inputs[2] is not None else attrs.get("max")
    return [torch.clamp(inputs[0], None if low is None else float(low), None if high is None else float(high))]


@onnx_op("Softmax")
def _softmax(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [torch.softmax(inputs[0], dim=attrs.get("axis", -1))]


def _elementwise(function: Callable[[Any, Any], Any]) -> Op:
    def apply(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
        out = inputs[0]
        for other in inputs[1:]:
            out = function(out, other)
        return [out]

    return apply


ONNX_OPS.update({
    "Add": _elementwise(torch.add), "Sum": _elementwise(torch.add), "Sub": _elementwise(torch.sub),
    "Mul": _elementwise(torch.mul), "Div": _elementwise(torch.div), "MatMul": _elementwise(torch.matmul),
})


@onnx_op("Identity", "Dropout")
def _identity(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [inputs[0]]


@onnx_op("Reshape")
def _reshape(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x, shape = inputs[0], [int(d) for d in inputs[1].tolist()]
    if not attrs.get("allowzero", 0):  # 0 copies the input's dimension unless allowzero
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [x.reshape(shape)]


@onnx_op("Flatten")
def _flatten(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x, axis = inputs[0], attrs.get("axis", 1) % max(inputs[0].dim(), 1)
    return [x.reshape(math.prod(x.shape[:axis]), -1)]


@onnx_op("Transpose")
def _transpose(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x = inputs[0]
    return [x.permute(attrs.get("perm", list(reversed(range(x.dim())))))]


@onnx_op("Concat")
def _concat(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [torch.cat(inputs, dim=attrs["axis"])]


@onnx_op("Shape")
def _shape(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    dims = list(inputs[0].shape)[attrs.get("start", 0) : attrs.get("end")]
    return [torch.tensor(dims, dtype=torch.int64)]


@onnx_op("Gather")
def _gather(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    data, indices = inputs[0], inputs[1].long()
    axis = attrs.get("axis", 0) % data.dim()
    indices = torch.where(indices < 0, indices + data.shape[axis], indices)
    picked = data.index_select(axis, indices.reshape(-1))
    return [picked.reshape(*data.shape[:axis], *indices.shape, *data.shape[axis + 1 :])]


@onnx_op("Unsqueeze")
def _unsqueeze(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x = inputs[0]
    axes = inputs[1].tolist() if len(inputs) > 1 else attrs["axes"]  # an input from opset 13
    rank = x.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = x.unsqueeze(axis)
    return [x]


@onnx_op("Squeeze")
def _squeeze(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x = inputs[0]
    axes = inputs[1].tolist() if len(inputs) > 1 and inputs[1] is not None else attrs.get("axes")
    if axes is None:
        return [x.squeeze()]
    return [x.squeeze(tuple(a % x.dim() for a in axes))]


# onnx.TensorProto element types -> torch dtypes, for Cast
CAST_TYPES = {1: torch.float32, 2: torch.uint8, 3: torch.int8, 6: torch.int32, 7: torch.int64, 9: torch.bool,
              10: torch.float16, 11: torch.float64, 16: torch.bfloat16}


@onnx_op("Cast")
def _cast(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    target = CAST_TYPES.get(attrs["to"])
    if target is None:
        raise UnsupportedOp(f"Cast to ONNX element type {attrs['to']}")
    return [inputs[0].to(target)]  # a float-to-float cast keeps the gradient


@onnx_op("Constant")
def _constant(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    if "value" not in attrs:
        raise UnsupportedOp("Constant without a tensor value")
    return [attrs["value"]]

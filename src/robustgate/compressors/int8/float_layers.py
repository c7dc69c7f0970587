"""Float forms of torch.ao's int8 layers and ops, the pieces a fake-quant twin is built from.

Each quantized module or ``torch.ops.quantized`` function gets the fp32 computation it performs,
with its int8 weights dequantized. Where the result is rounded onto an int8 grid is not decided
here: the twin reads that off the int8 model itself (see ``twin.py``), so a layer's float form is
only its arithmetic. ``FLOAT_LAYERS``/``FLOAT_OPS`` are the whole table: an int8 layer missing from
it has no twin, and the builder says which.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import torch
from torch import nn
from torch.nn import functional as F

QParams = tuple[float, int, torch.dtype]

RANGES = {torch.quint8: (0, 255), torch.qint8: (-128, 127)}


def fake_quantize(x: torch.Tensor, scale: Any, zero_point: Any, dtype: torch.dtype) -> torch.Tensor:
    low, high = RANGES[dtype]
    return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero_point), low, high)


def qparams_of(value: Any) -> QParams | None:
    """Scale, zero point and dtype of a per-tensor quantized activation (None for anything else)."""
    if not isinstance(value, torch.Tensor) or not value.is_quantized or value.dtype not in RANGES:
        return None
    if value.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        return None
    return float(value.q_scale()), int(value.q_zero_point()), value.dtype


# -- float layers for torch.ao's quantized modules ---------------------------------------------------


class Quantize(nn.Module):
    """Where the int8 model quantizes its input: a straight-through fake quantization."""

    def __init__(self, scale: float, zero_point: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.scale, self.zero_point, self.dtype = scale, zero_point, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quantize(x, self.scale, self.zero_point, self.dtype)


class Then(nn.Module):
    """A float layer followed by an activation (the fused int8 modules: conv+relu, linear+tanh, ...)."""

    def __init__(self, layer: nn.Module, activation: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.layer, self.activation = layer, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.layer(x))


class ConvAdd(nn.Module):
    """Float form of ConvAdd2d / ConvAddReLU2d: conv(x) + other, then optionally ReLU."""

    def __init__(self, conv: nn.Module, relu: bool) -> None:
        super().__init__()
        self.conv, self.relu = conv, relu

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        out = self.conv(x) + other
        return F.relu(out) if self.relu else out


class Functional(nn.Module):
    """Stands in for eager mode's QFunctional: the float op, then its output fake-quantized.

    Its methods are called from the parent's forward code, not through ``__call__``, so the
    recorded grids cannot reach them: the module's own scale and zero point are used."""

    def __init__(self, scale: float, zero_point: int) -> None:
        super().__init__()
        self.scale, self.zero_point = scale, zero_point

    def _fq(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quantize(x, self.scale, self.zero_point, torch.quint8)

    def add(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._fq(a + b)

    def add_relu(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._fq(F.relu(a + b))

    def mul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._fq(a * b)

    def mul_relu(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._fq(F.relu(a * b))

    def add_scalar(self, a: torch.Tensor, b: float) -> torch.Tensor:
        return a + b

    def mul_scalar(self, a: torch.Tensor, b: float) -> torch.Tensor:
        return a * b

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._fq(a @ b)

    def cat(self, tensors: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
        return self._fq(torch.cat(tensors, dim=dim))


Layer = TypeVar("Layer", bound=nn.Module)


def _with(layer: Layer, **tensors: torch.Tensor | None) -> Layer:
    for name, value in tensors.items():
        if value is None:
            setattr(layer, name, None)
        else:
            getattr(layer, name).data = value.detach().dequantize() if value.is_quantized else value.detach().clone()
    return layer.eval()


def _conv(module: Any) -> nn.Module:
    kind = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[len(module.kernel_size)]
    bias = module.bias()
    layer = kind(
        module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
        module.dilation, module.groups, bias=bias is not None, padding_mode=module.padding_mode,
    )
    return _with(layer, weight=module.weight(), bias=bias)


def _linear(module: Any) -> nn.Linear:
    bias = module.bias()
    return _with(nn.Linear(module.in_features, module.out_features, bias=bias is not None), weight=module.weight(), bias=bias)


def _batch_norm(module: Any) -> nn.Module:
    kind = nn.BatchNorm2d if module.__class__.__name__.endswith("2d") else nn.BatchNorm3d
    layer = kind(module.num_features, eps=module.eps)
    return _with(layer, weight=module.weight, bias=module.bias, running_mean=module.running_mean, running_var=module.running_var)


def _norm(module: Any) -> nn.Module:
    affine = {"weight": module.weight, "bias": module.bias}
    name = type(module).__name__
    layer: nn.Module
    if name == "LayerNorm":
        layer = nn.LayerNorm(module.normalized_shape, eps=module.eps, elementwise_affine=module.elementwise_affine)
    elif name == "GroupNorm":
        layer = nn.GroupNorm(module.num_groups, module.num_channels, eps=module.eps, affine=module.affine)
    else:  # InstanceNorm1d/2d/3d
        layer = getattr(nn, name)(module.num_features, eps=module.eps, affine=module.affine)
    present = {k: v for k, v in affine.items() if isinstance(getattr(layer, k, None), torch.Tensor)}
    return _with(layer, **present)


def _prelu(module: Any) -> nn.Module:
    weight = module.weight.dequantize()
    return _with(nn.PReLU(weight.numel()), weight=weight)


def float_layers() -> dict[type, Callable[[Any], nn.Module]]:
    """Each torch.ao quantized module type and how to build its float form from an instance."""
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq
    import torch.ao.nn.quantized.dynamic as nnqd

    relu = Then
    return {
        nnq.Conv1d: _conv, nnq.Conv2d: _conv, nnq.Conv3d: _conv,
        nniq.ConvReLU1d: lambda m: relu(_conv(m), F.relu),
        nniq.ConvReLU2d: lambda m: relu(_conv(m), F.relu),
        nniq.ConvReLU3d: lambda m: relu(_conv(m), F.relu),
        nniq.ConvAdd2d: lambda m: ConvAdd(_conv(m), relu=False),
        nniq.ConvAddReLU2d: lambda m: ConvAdd(_conv(m), relu=True),
        nnq.Linear: _linear,
        nnqd.Linear: _linear,  # activations are quantized per batch at run time: left in float
        nniq.LinearReLU: lambda m: relu(_linear(m), F.relu),
        nniq.LinearLeakyReLU: lambda m: relu(_linear(m), partial(F.leaky_relu, negative_slope=m.negative_slope)),
        nniq.LinearTanh: lambda m: relu(_linear(m), torch.tanh),
        nnq.BatchNorm2d: _batch_norm, nnq.BatchNorm3d: _batch_norm,
        nniq.BNReLU2d: lambda m: relu(_batch_norm(m), F.relu),
        nniq.BNReLU3d: lambda m: relu(_batch_norm(m), F.relu),
        nnq.LayerNorm: _norm, nnq.GroupNorm: _norm,
        nnq.InstanceNorm1d: _norm, nnq.InstanceNorm2d: _norm, nnq.InstanceNorm3d: _norm,
        nnq.Hardswish: lambda m: nn.Hardswish(),
        nnq.ELU: lambda m: nn.ELU(m.alpha),
        nnq.LeakyReLU: lambda m: nn.LeakyReLU(m.negative_slope),
        nnq.ReLU6: lambda m: nn.ReLU6(),
        nnq.Sigmoid: lambda m: nn.Sigmoid(),
        nnq.Softmax: lambda m: nn.Softmax(m.dim),
        nnq.PReLU: _prelu,
        nnq.Dropout: lambda m: nn.Identity(),  # evaluation mode
        nnq.DeQuantize: lambda m: nn.Identity(),
        nnq.Quantize: lambda m: Quantize(float(m.scale), int(m.zero_point), m.dtype),
        nnq.QFunctional: lambda m: Functional(float(m.scale), int(m.zero_point)),
    }


def is_torch_ao(module: nn.Module) -> bool:
    return type(module).__module__.startswith(("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized"))


def quantize_ste(x: torch.Tensor, scale: Any, zero_point: Any, dtype: torch.dtype) -> torch.Tensor:
    return fake_quantize(x, scale, zero_point, dtype)


# -- float forms of torch.ops.quantized functions (FX graphs) ------------------------------------------
# Their output scale and zero point arguments are dropped: the recorded grids round the results;
# ``packed`` is torch's opaque packed-weights object (a ScriptObject, untyped).


def _conv_packed(x: torch.Tensor, packed: Any, *_: Any, relu: bool = False, **__: Any) -> torch.Tensor:
    weight, bias = packed.unpack()
    conv = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[weight.dim()]
    out = conv(x, weight.dequantize(), bias, packed.stride(), packed.padding(), packed.dilation(), packed.groups())
    return F.relu(out) if relu else out


def _linear_packed(x: torch.Tensor, packed: Any, *_: Any, relu: bool = False, **__: Any) -> torch.Tensor:
    weight, bias = torch.ops.quantized.linear_unpack(packed)
    out = F.linear(x, weight.dequantize(), bias)
    return F.relu(out) if relu else out


def float_ops() -> dict[Any, Callable[..., Any]]:
    """Each ``torch.ops.quantized`` function (and ``torch.quantize_per_tensor``) and its float form."""
    # Parameter names follow the ops' schemas, since FX may pass any argument by keyword.
    q = torch.ops.quantized
    return {
        q.add: lambda qa, qb, *_, **__: qa + qb,
        q.add_relu: lambda qa, qb, *_, **__: F.relu(qa + qb),
        q.mul: lambda qa, qb, *_, **__: qa * qb,
        q.mul_relu: lambda qa, qb, *_, **__: F.relu(qa * qb),
        q.add_scalar: lambda qa, b: qa + b,
        q.mul_scalar: lambda qa, b: qa * b,
        q.matmul: lambda qa, qb, *_, **__: qa @ qb,
        q.cat: lambda qx, dim, *_, **__: torch.cat(qx, dim),
        q.layer_norm: lambda input, normalized_shape, weight=None, bias=None, eps=1e-5, *_, **__: F.layer_norm(
            input, normalized_shape, weight, bias, eps
        ),
        q.group_norm: lambda input, num_groups, weight=None, bias=None, eps=1e-5, *_, **__: F.group_norm(
            input, num_groups, weight, bias, eps
        ),
        q.instance_norm: lambda input, weight=None, bias=None, eps=1e-5, *_, **__: F.instance_norm(
            input, weight=weight, bias=bias, eps=eps
        ),
        q.batch_norm2d: lambda qx, weight, bias, mean, var, eps, *_, **__: F.batch_norm(
            qx, mean, var, weight, bias, False, 0.0, eps
        ),
        q.batch_norm2d_relu: lambda qx, weight, bias, mean, var, eps, *_, **__: F.relu(
            F.batch_norm(qx, mean, var, weight, bias, False, 0.0, eps)
        ),
        q.hardswish: lambda input, *_, **__: F.hardswish(input),
        q.elu: lambda self, output_scale, output_zero_point, alpha=1.0, *_, **__: F.elu(self, float(alpha)),
        q.celu: lambda self, output_scale, output_zero_point, alpha=1.0, **__: F.celu(self, float(alpha)),
        q.leaky_relu: lambda qx, negative_slope, *_, **__: F.leaky_relu(qx, float(negative_slope)),
        q.sigmoid: lambda qx, *_, **__: torch.sigmoid(qx),
        q.softmax: lambda qx, dim, *_, **__: F.softmax(qx, dim),
        q.prelu: lambda qx, weight, *_, **__: F.prelu(qx, weight.dequantize() if weight.is_quantized else weight),
        q.relu6: lambda qx, *_, **__: F.relu6(qx),
        q.threshold: lambda qx, threshold, value: F.threshold(qx, float(threshold), float(value)),
        q.clamp: lambda qx, min=None, max=None: torch.clamp(qx, min, max),
        q.conv1d: _conv_packed,
        q.conv2d: _conv_packed,
        q.conv3d: _conv_packed,
        q.conv2d_relu: lambda qx, packed, *_, **__: _conv_packed(qx, packed, relu=True),
        q.linear: _linear_packed,
        q.linear_relu: lambda X, W_prepack, *_, **__: _linear_packed(X, W_prepack, relu=True),
        q.linear_dynamic: lambda X, W_prepack, *_, **__: _linear_packed(X, W_prepack),
        torch.quantize_per_tensor: quantize_ste,
    }


# Ops that only select or move int8 codes, so their output lies on their input's grid already.
MOVES_CODES = {
    "view", "reshape", "flatten", "permute", "transpose", "contiguous", "squeeze", "unsqueeze", "relu", "expand",
    "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool2d", "getitem", "chunk", "split", "narrow", "clone",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool2d", "ReLU", "Identity", "Flatten", "Dropout",
}



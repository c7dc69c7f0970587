"""Differentiable fake-quant twins of int8 networks, for white-box attacks.

int8 kernels have no autograd. The twin computes in fp32 with the int8 model's own
dequantized weights, and fake-quantizes every activation with the int8 model's scales and
zero points (``torch.fake_quantize_per_tensor_affine``: round and clamp forward, straight-through
gradient inside the range, zero outside). It follows the int8 model closely but not bit for
bit (requantization rounding differs), so callers measure its agreement with the int8 model
and score adversarial examples on the int8 model itself.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from robustgate.errors import CompressionError


def fake_quantize(x: torch.Tensor, scale: Any, zero_point: Any, dtype: torch.dtype) -> torch.Tensor:
    low, high = (0, 255) if dtype == torch.quint8 else (-128, 127)
    return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero_point), low, high)


class FakeQuantized(nn.Module):
    """A float layer (int8 weights dequantized) whose output is fake-quantized as the int8 layer's was."""

    def __init__(self, layer: nn.Module, scale: float, zero_point: int, relu: bool) -> None:
        super().__init__()
        self.layer, self.scale, self.zero_point, self.relu = layer, scale, zero_point, relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x)
        return fake_quantize(F.relu(out) if self.relu else out, self.scale, self.zero_point, torch.quint8)


class Quantize(nn.Module):
    def __init__(self, scale: float, zero_point: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.scale, self.zero_point, self.dtype = scale, zero_point, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quantize(x, self.scale, self.zero_point, self.dtype)


class Functional(nn.Module):
    """Stands in for eager mode's QFunctional: the float op, then its output fake-quantized."""

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

    def add_scalar(self, a: torch.Tensor, b: float) -> torch.Tensor:
        return a + b

    def mul_scalar(self, a: torch.Tensor, b: float) -> torch.Tensor:
        return a * b

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._fq(a @ b)

    def cat(self, tensors: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
        return self._fq(torch.cat(tensors, dim=dim))


def _float_layer(module: nn.Module) -> nn.Module | None:
    """The float twin of one torch.ao quantized module, or None if ``module`` is not one."""
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq
    import torch.ao.nn.quantized.dynamic as nnqd

    if isinstance(module, nnqd.Linear):  # activations are quantized per batch at run time: left in float
        return _linear(module)
    if isinstance(module, (nniq.ConvReLU2d, nnq.Conv2d)):
        layer = nn.Conv2d(
            module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
            module.dilation, module.groups, bias=module.bias() is not None,
        )
        layer.weight.data = module.weight().dequantize()
        if module.bias() is not None:
            layer.bias.data = module.bias().detach().clone()
        return FakeQuantized(layer, module.scale, module.zero_point, isinstance(module, nniq.ConvReLU2d))
    if isinstance(module, (nniq.LinearReLU, nnq.Linear)):
        return FakeQuantized(_linear(module), module.scale, module.zero_point, isinstance(module, nniq.LinearReLU))
    if isinstance(module, nnq.Quantize):
        return Quantize(float(module.scale), int(module.zero_point), module.dtype)
    if isinstance(module, nnq.DeQuantize):
        return nn.Identity()
    if isinstance(module, nnq.QFunctional):
        return Functional(module.scale, module.zero_point)
    return None


def _linear(module: nn.Module) -> nn.Linear:
    bias = module.bias()
    layer = nn.Linear(module.in_features, module.out_features, bias=bias is not None)
    layer.weight.data = module.weight().dequantize()
    if bias is not None:
        layer.bias.data = bias.detach().clone()
    return layer


def _swap_modules(root: nn.Module) -> None:
    for name, child in list(root.named_children()):
        twin = _float_layer(child)
        if twin is not None:
            setattr(root, name, twin)
        else:
            _swap_modules(child)


# The scalar forms (``x + 1.0``) come without output qparams: int8 keeps the input's, so the sum
# is left as it is (the twin is an approximation there).


def _quantized_add(a, b, scale=None, zero_point=None):
    return a + b if scale is None else fake_quantize(a + b, scale, zero_point, torch.quint8)


def _quantized_add_relu(a, b, scale=None, zero_point=None):
    out = F.relu(a + b)
    return out if scale is None else fake_quantize(out, scale, zero_point, torch.quint8)


def _quantized_mul(a, b, scale=None, zero_point=None):
    return a * b if scale is None else fake_quantize(a * b, scale, zero_point, torch.quint8)


def _quantized_cat(tensors, dim, scale, zero_point):
    return fake_quantize(torch.cat(tensors, dim), scale, zero_point, torch.quint8)


def _quantize(x, scale, zero_point, dtype):
    return fake_quantize(x, scale, zero_point, dtype)


def _identity(x):
    return x


def torch_ao_twin(net: nn.Module) -> nn.Module:
    """The twin of a torch.ao int8 network (FX GraphModule or eager module tree)."""
    twin = copy.deepcopy(net)
    _swap_modules(twin)
    if isinstance(twin, torch.fx.GraphModule):
        functions = {
            torch.quantize_per_tensor: _quantize,
            torch.ops.quantized.add: _quantized_add,
            torch.ops.quantized.add_relu: _quantized_add_relu,
            torch.ops.quantized.mul: _quantized_mul,
            torch.ops.quantized.cat: _quantized_cat,
        }
        for node in twin.graph.nodes:
            if node.op == "call_function" and node.target in functions:
                node.target = functions[node.target]
            elif node.op == "call_function" and getattr(node.target, "__module__", None) == "torch._ops.quantized":
                raise CompressionError(f"no fake-quant twin for the int8 op {node.target}")
            elif node.op == "call_method" and node.target == "dequantize":
                node.op, node.target = "call_function", _identity
        twin.recompile()
    left = sorted({type(m).__name__ for m in twin.modules() if type(m).__module__.startswith("torch.ao.nn")})
    if left:
        raise CompressionError(f"no fake-quant twin for the int8 modules {', '.join(left)}")
    return twin.eval()


def _pt2e_quantize(x, scale, zero_point, quant_min, quant_max, dtype, *rest):
    # The int8 code as a float, with a straight-through gradient: round(x / s) + z, clamped.
    return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero_point), quant_min, quant_max) / float(scale) + int(zero_point)


def _pt2e_dequantize(q, scale, zero_point, quant_min, quant_max, dtype, *rest, **kwargs):
    return (q.float() - int(zero_point)) * float(scale)


def _pt2e_dequantize_per_channel(q, scales, zero_points, axis, quant_min, quant_max, dtype, *rest, **kwargs):
    shape = [1] * q.dim()
    shape[axis] = -1
    return (q.float() - zero_points.view(shape).float()) * scales.view(shape).float()


def pt2e_twin(converted: torch.fx.GraphModule) -> nn.Module:
    """The twin of a converted PT2E graph: its quantize/dequantize pairs become a straight-through
    fake quantization, its int8 weights are dequantized, and in-place ops become out-of-place."""
    twin = copy.deepcopy(converted)
    decomposed = torch.ops.quantized_decomposed
    functions = {
        decomposed.quantize_per_tensor.default: _pt2e_quantize,
        decomposed.dequantize_per_tensor.default: _pt2e_dequantize,
        decomposed.dequantize_per_channel.default: _pt2e_dequantize_per_channel,
        torch.ops.aten.relu_.default: torch.ops.aten.relu.default,
        torch.ops.aten.add_.Tensor: torch.ops.aten.add.Tensor,
    }
    for node in twin.graph.nodes:
        if node.op == "call_function" and node.target in functions:
            node.target = functions[node.target]
        elif node.op == "call_function" and "quantized_decomposed" in str(node.target):
            raise CompressionError(f"no fake-quant twin for the PT2E op {node.target}")
    twin.recompile()
    return twin



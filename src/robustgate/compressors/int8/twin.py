"""Differentiable fake-quant twins of int8 networks, for white-box attacks.

int8 kernels have no autograd. The twin computes in fp32 with the int8 model's own dequantized
weights, and fake-quantizes activations where the int8 model quantizes them
(``torch.fake_quantize_per_tensor_affine``: round and clamp forward, straight-through gradient
inside the range, zero outside).

Where the twin rounds is read off the int8 model itself rather than off a table of layers: the
int8 network runs once on an example batch, and every intermediate result that comes out as a
quantized tensor (of a convolution, an add, a pooling that averages int8 codes, a sigmoid with
its fixed 1/256 grid, ...) gets its scale and zero point recorded; the twin rounds the same
results onto the same grids. So a twin follows any graph whose int8 layers it can compute in
float, and only the layer table (:data:`FLOAT_LAYERS`, :data:`FLOAT_OPS`) is per kind. What it
still cannot reproduce bit for bit is the kernels' own requantization arithmetic, so callers
measure its agreement with the int8 model and score adversarial examples on the int8 model.

A network the twin cannot follow raises :class:`NoTwin`, which names what is missing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from robustgate.errors import CompressionError, first_line


class NoTwin(CompressionError):
    """An int8 network has no differentiable twin (a layer or op the twin builder cannot compute in float)."""


QParams = tuple[float, int, torch.dtype]

_RANGES = {torch.quint8: (0, 255), torch.qint8: (-128, 127)}


def fake_quantize(x: torch.Tensor, scale: Any, zero_point: Any, dtype: torch.dtype) -> torch.Tensor:
    low, high = _RANGES[dtype]
    return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero_point), low, high)


def _rounded(x: torch.Tensor, scale: float, zero_point: int, low: int, high: int) -> torch.Tensor:
    # Inserted into FX twins after each result the int8 model quantized (graph nodes take plain arguments).
    return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, low, high)


def qparams_of(value: Any) -> QParams | None:
    """Scale, zero point and dtype of a per-tensor quantized activation (None for anything else)."""
    if not isinstance(value, torch.Tensor) or not value.is_quantized or value.dtype not in _RANGES:
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


class Rounded(nn.Module):
    """A float layer whose output is fake-quantized onto the grid the int8 layer's output was on."""

    def __init__(self, layer: nn.Module, qparams: QParams) -> None:
        super().__init__()
        self.layer, self.qparams = layer, qparams

    def forward(self, *args: Any) -> torch.Tensor:
        return fake_quantize(self.layer(*args), *self.qparams)


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


def _with(layer: nn.Module, **tensors: torch.Tensor | None) -> nn.Module:
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


def _float_layers() -> dict[type, Callable[[Any], nn.Module]]:
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
        nniq.LinearLeakyReLU: lambda m: relu(_linear(m), lambda x, s=m.negative_slope: F.leaky_relu(x, s)),
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


def _is_torch_ao(module: nn.Module) -> bool:
    return type(module).__module__.startswith(("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized"))


def _quantize_ste(x, scale, zero_point, dtype):
    return fake_quantize(x, scale, zero_point, dtype)


# -- float forms of torch.ops.quantized functions (FX graphs) ------------------------------------------
# Their output scale and zero point arguments are dropped: the recorded grids round the results.


def _conv_packed(x, packed, *_, relu: bool = False, **__):
    weight, bias = packed.unpack()
    conv = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[weight.dim()]
    out = conv(x, weight.dequantize(), bias, packed.stride(), packed.padding(), packed.dilation(), packed.groups())
    return F.relu(out) if relu else out


def _linear_packed(x, packed, *_, relu: bool = False, **__):
    weight, bias = torch.ops.quantized.linear_unpack(packed)
    out = F.linear(x, weight.dequantize(), bias)
    return F.relu(out) if relu else out


def _float_ops() -> dict[Any, Callable[..., Any]]:
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
        torch.quantize_per_tensor: _quantize_ste,
    }


# Ops that only select or move int8 codes, so their output lies on their input's grid already.
_MOVES_CODES = {
    "view", "reshape", "flatten", "permute", "transpose", "contiguous", "squeeze", "unsqueeze", "relu", "expand",
    "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool2d", "getitem", "chunk", "split", "narrow", "clone",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool2d", "ReLU", "Identity", "Flatten", "Dropout",
}


# -- building the twin ---------------------------------------------------------------------------------


def torch_ao_twin(net: nn.Module, example: torch.Tensor) -> nn.Module:
    """The twin of a torch.ao int8 network (FX GraphModule or eager module tree).

    ``example`` is a batch of the network's own (normalised) inputs; the network runs on it once
    to record where it quantizes. Call under the network's quantized engine."""
    if isinstance(net, torch.fx.GraphModule):
        return _graph_twin(net, example)
    return _eager_twin(net, example)


def _float_layer(module: nn.Module, layers: dict[type, Callable[[Any], nn.Module]]) -> nn.Module:
    make = layers.get(type(module))
    if make is None:
        raise NoTwin(f"no fake-quant twin for the int8 layer {type(module).__module__}.{type(module).__name__}")
    return make(module)


def _eager_twin(net: nn.Module, example: torch.Tensor) -> nn.Module:
    recorded: dict[str, QParams | None] = {}
    hooks = [
        module.register_forward_hook(lambda m, i, out, name=name: recorded.__setitem__(name, qparams_of(out)))
        for name, module in net.named_modules()
        if name
    ]
    try:
        with torch.inference_mode():
            net(example)
    finally:
        for hook in hooks:
            hook.remove()
    twin = copy.deepcopy(net)
    _swap_children(twin, "", recorded, _float_layers())
    return _checked_leftovers(twin).eval()


def _swap_children(parent: nn.Module, prefix: str, recorded: dict[str, QParams | None], layers: dict) -> None:
    """Replace every int8 layer under ``parent`` by its float twin, and round each leaf's output onto
    the grid the int8 model's was on; containers are walked, not replaced."""
    for attr, module in list(parent.named_children()):
        name = f"{prefix}{attr}"
        if _is_torch_ao(module):
            floated = _float_layer(module, layers)
        elif list(module.children()):
            _swap_children(module, f"{name}.", recorded, layers)
            continue
        else:
            floated = module
        qparams = recorded.get(name)
        if qparams is not None and not isinstance(floated, (Quantize, Functional)) and type(module).__name__ not in _MOVES_CODES:
            floated = Rounded(floated, qparams)
        if floated is not module:
            setattr(parent, attr, floated)


class _Recorder(torch.fx.Interpreter):
    def __init__(self, module: torch.fx.GraphModule) -> None:
        super().__init__(module)
        self.qparams: dict[str, QParams | None] = {}

    def run_node(self, node: torch.fx.Node) -> Any:
        out = super().run_node(node)
        self.qparams[node.name] = qparams_of(out)
        return out


def _graph_twin(graph_module: torch.fx.GraphModule, example: torch.Tensor) -> nn.Module:
    recorder = _Recorder(graph_module)
    with torch.inference_mode():
        recorder.run(example)
    twin, layers, ops = copy.deepcopy(graph_module), _float_layers(), _float_ops()
    modules = dict(twin.named_modules())
    graph = twin.graph
    for node in list(graph.nodes):
        if node.op == "call_module" and _is_torch_ao(modules[node.target]):
            owner, _, attr = node.target.rpartition(".")
            setattr(twin.get_submodule(owner) if owner else twin, attr, _float_layer(modules[node.target], layers))
        elif node.op == "call_function" and node.target in ops:
            node.target = ops[node.target]
        elif node.op == "call_function" and _is_quantized_op(node.target):
            raise NoTwin(f"no fake-quant twin for the int8 op {node.target}")
        elif node.op == "call_method" and node.target == "dequantize":
            node.op, node.target = "call_function", _identity
        qparams = recorder.qparams.get(node.name)
        if qparams is None or node.op in ("placeholder", "get_attr") or _keeps_grid(node, modules, recorder.qparams):
            continue
        low, high = _RANGES[qparams[2]]
        with graph.inserting_after(node):
            rounded = graph.call_function(_rounded, (node, qparams[0], qparams[1], low, high))
        node.replace_all_uses_with(rounded, delete_user_cb=lambda user: user is not rounded)
    twin.recompile()
    return _checked_leftovers(twin).eval()


def _keeps_grid(node: torch.fx.Node, modules: dict[str, nn.Module], recorded: dict[str, QParams | None]) -> bool:
    """Whether rounding ``node``'s output is a no-op: it is a quantize (already rounded), or it only
    moves int8 codes of an input that was on the very same grid."""
    if node.op == "call_function" and node.target is _quantize_ste:
        return True
    if node.op == "call_module":
        name = type(modules[node.target]).__name__
    else:
        name = getattr(node.target, "__name__", str(node.target))
    source = node.args[0] if node.args else None
    return name in _MOVES_CODES and isinstance(source, torch.fx.Node) and recorded.get(source.name) == recorded.get(node.name)


def _identity(x):
    return x


def _is_quantized_op(target: Any) -> bool:
    return getattr(target, "__module__", None) == "torch._ops.quantized" or str(target).startswith("quantized.")


def _checked_leftovers(twin: nn.Module) -> nn.Module:
    left = sorted({type(m).__name__ for m in twin.modules() if _is_torch_ao(m)})
    if left:
        raise NoTwin(f"no fake-quant twin for the int8 layers {', '.join(left)}")
    return twin


# -- PT2E ----------------------------------------------------------------------------------------------


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
    }
    for node in twin.graph.nodes:
        if node.op != "call_function":
            continue
        if node.target in functions:
            node.target = functions[node.target]
        elif "quantized_decomposed" in str(node.target):
            raise NoTwin(f"no fake-quant twin for the PT2E op {node.target}")
        else:
            node.target = _out_of_place(node.target)
    twin.recompile()
    return twin


def _out_of_place(target: Any) -> Any:
    """aten's in-place overload (``relu_``, ``hardtanh_``, ``add_``) as its functional twin, so autograd
    never sees a leaf or a saved tensor modified in place; anything else as it is."""
    packet = getattr(target, "overloadpacket", None)
    name = getattr(packet, "__name__", "")
    if not name.endswith("_") or name.endswith("__"):
        return target
    functional = getattr(torch.ops.aten, name[:-1], None)
    overload = getattr(functional, target._overloadname, None) if functional is not None else None
    return overload if overload is not None else target


def twin_problem(twin: nn.Module, example: torch.Tensor) -> str | None:
    """Why ``twin`` cannot drive a white-box attack on ``example`` (None: it runs and is differentiable)."""
    x = example.clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            out = twin(x)
            if not isinstance(out, torch.Tensor) or not out.requires_grad:
                return "its output does not depend differentiably on its input"
            (gradient,) = torch.autograd.grad(out.float().logsumexp(1).sum(), x, allow_unused=True)
    except Exception as err:  # an op the twin computes wrongly surfaces as any torch exception type
        return f"it fails on the model's inputs: {first_line(err)}"
    if gradient is None or not bool(torch.isfinite(gradient).all()):
        return "its input gradient is None or not finite"
    return None


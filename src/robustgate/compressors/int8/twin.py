"""Differentiable fake-quant twins of int8 networks, for white-box attacks.

int8 kernels have no autograd. A twin computes each int8 layer in float (``float_layers.py``: the
layer's arithmetic with its dequantized weights) and rounds where the int8 model rounds, with a
straight-through gradient. Where the int8 model rounds is read off the model itself rather than off
a table of layers: the int8 network runs once on an example batch, and every intermediate result
that comes out as a quantized tensor (of a convolution, an add, a pooling that averages int8 codes,
a sigmoid with its fixed 1/256 grid, ...) gets a rounding point (a ``Snap``) with its scale and zero
point. So a twin follows any graph whose int8 layers have a float form, and runs in lockstep with
the int8 model (``lockstep.py``): the int8 values forward, the twin's gradients backward.

A network the twin cannot follow raises :class:`NoTwin`, which names what is missing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from robustgate.compressors.int8.float_layers import (
    MOVES_CODES, QParams, Functional, Quantize, float_layers, float_ops, is_torch_ao, qparams_of, quantize_ste,
)
from robustgate.compressors.int8.lockstep import Lockstep, LockstepTwin, Snap
from robustgate.errors import CompressionError, first_line


class NoTwin(CompressionError):
    """An int8 network has no differentiable twin (a layer or op the twin builder cannot compute in float)."""


def torch_ao_twin(net: nn.Module, engine: Callable[[], Any], example: torch.Tensor) -> LockstepTwin:
    """The lockstep twin of a torch.ao int8 network (FX GraphModule or eager module tree).

    ``engine``: a context manager factory selecting the network's quantized engine, under which it runs;
    ``example``: a batch of its (normalised) inputs, on which it runs once to show where it rounds."""
    if isinstance(net, torch.fx.GraphModule):
        return _graph_twin(net, engine, example)
    return _eager_twin(net, engine, example)


# -- FX graphs -----------------------------------------------------------------------------------------


class _Recorder(torch.fx.Interpreter):
    """Runs an int8 graph node by node, keeping each tensor result as a float (quantized ones dequantized)."""

    def __init__(self, module: torch.fx.GraphModule) -> None:
        super().__init__(module)
        self.values: dict[str, torch.Tensor] = {}
        self.qparams: dict[str, QParams | None] = {}

    def run_node(self, node: torch.fx.Node) -> Any:
        out = super().run_node(node)
        if isinstance(out, torch.Tensor) and node.op not in ("get_attr", "output"):
            self.qparams[node.name] = qparams_of(out)
            self.values[node.name] = out.dequantize() if out.is_quantized else out
        return out


def _graph_twin(graph_module: torch.fx.GraphModule, engine: Callable[[], Any], example: torch.Tensor) -> LockstepTwin:
    def reference(x: torch.Tensor) -> dict[str, torch.Tensor]:
        recorder = _Recorder(graph_module)
        with engine():
            recorder.run(x)
        return recorder.values

    # Which results are quantized, and on which grid, is fixed by static quantization: read it off any batch.
    probe = _Recorder(graph_module)
    with engine(), torch.no_grad():
        probe.run(example)
    twin, layers, ops, state = copy.deepcopy(graph_module), float_layers(), float_ops(), Lockstep()
    modules = dict(twin.named_modules())
    graph = twin.graph
    for node in list(graph.nodes):
        if node.op == "call_module" and is_torch_ao(modules[node.target]):
            owner, _, attr = node.target.rpartition(".")
            setattr(twin.get_submodule(owner) if owner else twin, attr, _float_layer(modules[node.target], layers))
        elif node.op == "call_function" and node.target in ops:
            node.target = ops[node.target]
        elif node.op == "call_function" and _is_quantized_op(node.target):
            raise NoTwin(f"no fake-quant twin for the int8 op {node.target}")
        elif node.op == "call_method" and node.target == "dequantize":
            node.op, node.target = "call_function", _identity
        if node.name not in probe.values or _keeps_grid(node, modules, probe.qparams):
            continue
        _insert_snap(twin, node, Snap(node.name, probe.qparams[node.name], state))
    twin.recompile()
    return LockstepTwin(_checked_leftovers(twin).eval(), reference, state)


def _insert_snap(graph_module: torch.fx.GraphModule, node: torch.fx.Node, snap: Snap) -> None:
    name = f"robustgate_snap_{len([n for n, _ in graph_module.named_children() if n.startswith('robustgate_snap_')])}"
    graph_module.add_submodule(name, snap)
    with graph_module.graph.inserting_after(node):
        snapped = graph_module.graph.call_module(name, (node,))
    node.replace_all_uses_with(snapped, delete_user_cb=lambda user: user is not snapped)


def _keeps_grid(node: torch.fx.Node, modules: dict[str, nn.Module], recorded: dict[str, QParams | None]) -> bool:
    """Whether ``node``'s result needs no rounding point: a quantize (it rounds itself), or an op that
    only moves int8 codes of an input on the very same grid (the twin computes it exactly)."""
    if node.op == "call_function" and node.target is quantize_ste:
        return True
    if node.op == "call_module" and isinstance(node.target, str):  # a call_module's target: the submodule's path
        name = type(modules[node.target]).__name__
    else:
        name = getattr(node.target, "__name__", str(node.target))
    source = node.args[0] if node.args else None
    return name in MOVES_CODES and isinstance(source, torch.fx.Node) and recorded.get(source.name) == recorded.get(node.name)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _is_quantized_op(target: Any) -> bool:
    return getattr(target, "__module__", None) == "torch._ops.quantized" or str(target).startswith("quantized.")


# -- eager module trees ---------------------------------------------------------------------------------


def _eager_twin(net: nn.Module, engine: Callable[[], Any], example: torch.Tensor) -> LockstepTwin:
    leaves = [(name, m) for name, m in net.named_modules() if name and not list(m.children())]

    def reference(x: torch.Tensor) -> dict[str, torch.Tensor]:
        values: dict[str, torch.Tensor] = {}

        def keep(name: str) -> Callable[..., None]:
            def hook(module: nn.Module, inputs: Any, out: Any) -> None:
                if isinstance(out, torch.Tensor):
                    values[name] = out.dequantize() if out.is_quantized else out
            return hook

        hooks = [module.register_forward_hook(keep(name)) for name, module in leaves]
        try:
            with engine():
                net(x)
        finally:
            for hook in hooks:
                hook.remove()
        return values

    state, qparams = Lockstep(), dict[str, QParams | None]()
    probe_hooks = [m.register_forward_hook(lambda m, i, out, name=name: qparams.__setitem__(name, qparams_of(out))) for name, m in leaves]
    try:
        with engine(), torch.no_grad():
            net(example)
    finally:
        for hook in probe_hooks:
            hook.remove()
    twin = copy.deepcopy(net)
    _swap_children(twin, "", qparams, float_layers(), state)
    return LockstepTwin(_checked_leftovers(twin).eval(), reference, state)


def _swap_children(parent: nn.Module, prefix: str, qparams: dict[str, QParams | None], layers: dict, state: Lockstep) -> None:
    """Replace every int8 layer under ``parent`` by its float form, followed by a rounding point where the
    int8 layer's result was quantized (or a plain lockstep point where it was float); containers are walked."""
    for attr, module in list(parent.named_children()):
        name = f"{prefix}{attr}"
        if is_torch_ao(module):
            floated = _float_layer(module, layers)
        elif list(module.children()):
            _swap_children(module, f"{name}.", qparams, layers, state)
            continue
        else:
            floated = module
        if not isinstance(floated, (Quantize, Functional)) and type(module).__name__ not in MOVES_CODES:
            floated = nn.Sequential(floated, Snap(name, qparams.get(name), state))
        if floated is not module:
            setattr(parent, attr, floated)


# -- shared --------------------------------------------------------------------------------------------


def _float_layer(module: nn.Module, layers: dict[type, Callable[[Any], nn.Module]]) -> nn.Module:
    make = layers.get(type(module))
    if make is None:
        raise NoTwin(f"no fake-quant twin for the int8 layer {type(module).__module__}.{type(module).__name__}")
    return make(module)


def _checked_leftovers(twin: nn.Module) -> nn.Module:
    left = sorted({type(m).__name__ for m in twin.modules() if is_torch_ao(m)})
    if left:
        raise NoTwin(f"no fake-quant twin for the int8 layers {', '.join(left)}")
    return twin


# -- PT2E ----------------------------------------------------------------------------------------------


def _pt2e_quantize(
    x: torch.Tensor, scale: float | torch.Tensor, zero_point: int | torch.Tensor, quant_min: int, quant_max: int, dtype: torch.dtype,
    *rest: Any,
) -> torch.Tensor:
    # The int8 code as a float, with a straight-through gradient: round(x / s) + z, clamped.
    return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero_point), quant_min, quant_max) / float(scale) + int(zero_point)


def _pt2e_dequantize(
    q: torch.Tensor, scale: float | torch.Tensor, zero_point: int | torch.Tensor, quant_min: int, quant_max: int, dtype: torch.dtype,
    *rest: Any, **kwargs: Any,
) -> torch.Tensor:
    return (q.float() - int(zero_point)) * float(scale)


def _pt2e_dequantize_per_channel(
    q: torch.Tensor, scales: torch.Tensor, zero_points: torch.Tensor, axis: int, quant_min: int, quant_max: int, dtype: torch.dtype,
    *rest: Any, **kwargs: Any,
) -> torch.Tensor:
    shape = [1] * q.dim()
    shape[axis] = -1
    return (q.float() - zero_points.view(shape).float()) * scales.view(shape).float()


class _GraphValues(torch.fx.Interpreter):
    """Every tensor result of a (reference, uncompiled) graph, by node name, as floats."""

    def __init__(self, module: torch.fx.GraphModule) -> None:
        super().__init__(module)
        self.values: dict[str, torch.Tensor] = {}

    def run_node(self, node: torch.fx.Node) -> Any:
        out = super().run_node(node)
        codes = out.dtype in (torch.int8, torch.uint8) if isinstance(out, torch.Tensor) else False
        if isinstance(out, torch.Tensor) and node.op not in ("get_attr", "output", "placeholder") and (out.is_floating_point() or codes):
            self.values[node.name] = out.float()
        return out


def pt2e_twin(
    converted: torch.fx.GraphModule, compiled: Callable[[torch.Tensor], torch.Tensor], logit_step: float | None = None,
    codes: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = None,
) -> LockstepTwin:
    """The lockstep twin of a converted PT2E graph: its quantize/dequantize pairs become a straight-through
    fake quantization, its int8 weights are dequantized, and in-place ops become out-of-place.

    Forward it follows the converted graph's reference execution at every quantize (the int8 codes),
    and ``compiled`` (the int8 kernels the variant runs: inductor's, or an ExecuTorch program's) at the logits;
    ``logit_step``: how far the twin's logits may be from those kernels' and count as agreeing (None: not tallied);
    ``codes``: the kernels' own int8 codes at the quantize ops, by node name, where they can be read (an ExecuTorch
    program lowered with them exposed), in place of the graph's reference execution."""
    twin, state = copy.deepcopy(converted), Lockstep()
    decomposed = torch.ops.quantized_decomposed
    functions = {
        decomposed.quantize_per_tensor.default: _pt2e_quantize,
        decomposed.dequantize_per_tensor.default: _pt2e_dequantize,
        decomposed.dequantize_per_channel.default: _pt2e_dequantize_per_channel,
    }
    logits = graph_logits(twin)
    for node in list(twin.graph.nodes):
        if node.op != "call_function":
            continue
        if node.target in functions:
            quantizes = node.target is decomposed.quantize_per_tensor.default
            node.target = functions[node.target]
            if quantizes:
                _insert_snap(twin, node, Snap(node.name, None, state, step=1.0))  # codes: one step is 1
        elif "quantized_decomposed" in str(node.target):
            raise NoTwin(f"no fake-quant twin for the PT2E op {node.target}")
        else:
            node.target = _out_of_place(node.target)
    if isinstance(logits, torch.fx.Node):
        _insert_snap(twin, logits, Snap("logits", None, state, step=logit_step))
    twin.recompile()

    def reference(x: torch.Tensor) -> dict[str, torch.Tensor]:
        if codes is not None:
            return {**codes(x), "logits": compiled(x).float()}
        values = _GraphValues(converted)
        values.run(x)
        return {**values.values, "logits": compiled(x).float()}

    return LockstepTwin(twin, reference, state)


def graph_logits(graph_module: torch.fx.GraphModule) -> Any:
    """What the graph returns as its logits: its output, or the first of its outputs (an exported program's module
    returns a tuple)."""
    output = next(node for node in graph_module.graph.nodes if node.op == "output")
    returned = output.args[0]
    return returned[0] if isinstance(returned, (tuple, list)) else returned


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

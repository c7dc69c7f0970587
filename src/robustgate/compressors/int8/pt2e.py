"""Static int8 through torchao's PT2E flow, compiled by inductor: the path PyTorch now recommends.

torch.export(strict=True) captures the network (with a dynamic batch dimension), the
X86InductorQuantizer annotates it, prepare_pt2e inserts observers, convert_pt2e folds int8
weights, and torch.compile with freezing lowers the q/dq pattern to oneDNN int8 kernels. The
compile costs tens of seconds per model and happens once, inside the step; inductor's own
on-disk cache makes the next process's compile of the same graph faster.

Only the observers' statistics are cached: restoring re-exports the parent and converts with
them, which reproduces the same int8 tensors without calibration data.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from robustgate.compressors.int8.engine import Int8Net
from robustgate.compressors.int8.observers import ACTIVATION_OBSERVERS
from robustgate.compressors.int8.params import PTQParams
from robustgate.compressors.int8.path import Calibrate, QuantizationPath, quantization_paths
from robustgate.errors import CompressionError, first_line

_OBSERVER_PREFIX = "activation_post_process_"
_MAX_BATCH = 1 << 16


class PT2EPath(QuantizationPath):
    def quantize(self, net: nn.Module, params: PTQParams, calibrate: Calibrate, example: torch.Tensor) -> Int8Net:
        prepared = self._prepare(net, params, example)
        calibrate(prepared)
        # convert_pt2e rewrites the prepared module in place: keep the statistics first.
        observers = {k: v.detach().clone() for k, v in prepared.state_dict().items() if k.startswith(_OBSERVER_PREFIX)}
        return CompiledInt8Net(self._convert(prepared), observers)

    def restore(self, net: nn.Module, params: PTQParams, state: dict[str, Any], example: torch.Tensor) -> Int8Net:
        prepared = self._prepare(net, params, example)
        observers = state["observers"]
        expected = {k for k in prepared.state_dict() if k.startswith(_OBSERVER_PREFIX)}
        if expected != set(observers):
            raise CompressionError(
                "ptq (pt2e): the cached observer statistics do not fit the graph exported now",
                hint="torch, torchao or the model's code changed since the entry was cached; "
                "delete the cache folder to build it afresh",
            )
        # Copied buffer by buffer: load_state_dict leaves per-channel observers' eps at its default
        # (torchao 0.18), which changes the weight scales of near-zero channels.
        with torch.no_grad():
            for name, value in observers.items():
                prepared.get_buffer(name).resize_(value.shape).copy_(value)
        return CompiledInt8Net(self._convert(prepared), observers)

    @staticmethod
    def _prepare(net: nn.Module, params: PTQParams, example: torch.Tensor) -> nn.Module:
        import_torchao()
        from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

        batch = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
        try:
            exported = torch.export.export(net, (example,), dynamic_shapes=({0: batch},), strict=True)
        except Exception as err:  # export reports unsupported Python as many different exception types
            raise CompressionError(
                f"ptq (pt2e): torch.export(strict=True) cannot capture the model: {first_line(err)}",
                hint="PT2E needs a forward() without data-dependent Python control flow or unsupported calls; "
                "backend: x86 (FX graph mode) may still quantize it",
            ) from None
        quantizer = xiq.X86InductorQuantizer().set_global(_quantization_config(params, xiq))
        with quiet_torchao():
            return prepare_pt2e(exported.module(), quantizer)

    @staticmethod
    def _convert(prepared: nn.Module) -> torch.fx.GraphModule:
        from torchao.quantization.pt2e import allow_exported_model_train_eval
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

        with quiet_torchao():
            converted = convert_pt2e(prepared)
        _drop_unused_tensors(converted)
        # Exported graphs refuse .eval()/.train(); the harness calls .eval() on every model it holds.
        return allow_exported_model_train_eval(converted)


def import_torchao() -> None:
    """Import torchao's PT2E modules once, quietly (they log a pytree deprecation notice on torch 2.14)."""
    with quiet_torchao():
        import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401


def _quantization_config(params: PTQParams, xiq: Any) -> Any:
    """X86InductorQuantizer's default (uint8 activations, symmetric per-channel int8 weights) with the spec's observer."""
    from torchao.quantization.pt2e import observer as torchao_observers

    config = xiq.get_default_x86_inductor_quantization_config()
    observer = getattr(torchao_observers, ACTIVATION_OBSERVERS[params.observer])
    activation = replace(config.input_activation, observer_or_fake_quant_ctr=observer.with_args(eps=2**-12))
    return replace(config, input_activation=activation, output_activation=activation)


def _drop_unused_tensors(graph_module: torch.fx.GraphModule) -> None:
    # convert_pt2e leaves the fp32 weights attached beside the int8 copies it folded; they are never
    # read, but they would count in the model's serialized size and memory.
    used = {node.target for node in graph_module.graph.nodes if node.op == "get_attr"}
    for name in list(graph_module.state_dict()):
        if name not in used:
            owner, _, attr = name.rpartition(".")
            delattr(graph_module.get_submodule(owner) if owner else graph_module, attr)


class CompiledInt8Net(Int8Net):
    """The converted PT2E graph, compiled with inductor on first use (freezing on, gradients off)."""

    _observers: dict[str, torch.Tensor]  # both set with object.__setattr__ below
    _compiled: Callable[[torch.Tensor], torch.Tensor] | None

    def __init__(self, converted: torch.fx.GraphModule, observers: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.converted = converted
        # Plain attributes, not submodules or buffers: neither is part of the model's state.
        object.__setattr__(self, "_observers", observers)
        object.__setattr__(self, "_compiled", None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        compiled = self._compiled
        first = compiled is None
        if compiled is None:
            # dynamic: one compile serves every batch size of 2 or more; batch 1 gets its own.
            compiled = torch.compile(self.converted, dynamic=True)
            object.__setattr__(self, "_compiled", compiled)
        # Any call may compile (a new batch size class, another grad mode), and a compile must see
        # freezing on, or the q/dq ops stay unfused reference code several times slower.
        quiet = _quiet_loggers("torch.utils.cpp_extension") if first else nullcontext()
        with torch.no_grad(), _freezing(), quiet:
            return compiled(images)

    def cache_state(self) -> dict[str, Any]:
        return {"observers": self._observers}

    def twin(self, example: torch.Tensor) -> nn.Module:
        from robustgate.compressors.int8.twin import pt2e_twin

        return pt2e_twin(self.converted, self.forward)

    def stored_parameters(self) -> int:
        # int8 weights and fp32 biases; scales and zero points are quantization metadata.
        return sum(
            t.numel() for name, t in self.converted.state_dict().items()
            if t.dtype == torch.int8 or (t.is_floating_point() and not name.startswith("_scale"))
        )


@contextmanager
def quiet_torchao() -> Iterator[None]:
    # torchao logs a pytree deprecation notice at import on torch 2.14; not the user's concern.
    with _quiet_loggers("torch.utils._pytree"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torchao|torch\.ao")
        yield


@contextmanager
def _freezing() -> Iterator[None]:
    # Set directly rather than through torch.compile(options=), which fails on torch 2.14
    # (UnsupportedOperatorException: onednn.qconv_prepack) for the same graph, or config.patch(),
    # whose bookkeeping costs a sizeable share of a small model's latency on every call.
    import torch._inductor.config as inductor_config

    previous = inductor_config.freezing
    inductor_config.freezing = True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\._inductor")
            yield
    finally:
        inductor_config.freezing = previous


@contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


quantization_paths.register("pt2e")(PT2EPath())

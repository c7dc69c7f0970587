"""Torch networks lowered to ExecuTorch programs delegated to XNNPACK: fp32, or int8 through PT2E.

What ExecuTorch's own documentation has a team run for a CPU target: ``torch.export`` with a bounded dynamic batch,
``to_edge_transform_and_lower`` with the ``XnnpackPartitioner``, ``to_executorch``; for int8, the PT2E flow with
ExecuTorch's ``XNNPACKQuantizer`` (symmetric int8 activations and weights) between the export and the lowering.
Written here only to feed it robustgate's networks, calibration images and options.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from robustgate.errors import CompressionError, first_line

# A program's memory is planned for this many images at most; larger batches run in chunks (executorch.py).
BATCH_BOUND = 32
# With torch 2.14, XNNPACK's lowering re-traces convolutions and torch's fake conv adds the guard "batch < 16" when
# the example batch is smaller: the planned bound silently becomes 15 whatever max says. So the example is the bound.
EXAMPLE_BATCH = BATCH_BOUND
REFERENCE_BOUND = 1 << 16  # the converted graph kept for the twin runs in torch, on batches of any size
# The codes program (below) is lowered with a static batch: with a dynamic one, ExecuTorch 1.5.1's XNNPACK delegate
# computed some exposed intermediate codes wrongly once a batch held more than a few images (a MobileNetV3-small: from
# its first residual add on, an image's codes and logits changed with the batch it ran in; the shipped program, with
# its logits as its only output, did not). Static, the codes were the same at every batch size and the logits the
# shipped program's. Short batches are padded by the runtime wrapper.
CODES_BATCH = 8


@dataclass(frozen=True)
class Lowered:
    program: bytes  # the .pte
    reference: bytes  # the graph it was lowered from (int8: the converted PT2E graph), torch.export.save'd: the twin's
    # int8: the same graph lowered with every activation's int8 codes as extra outputs (None: fp32, or a lowering
    # whose logits were not the shipped program's). XNNPACK's intermediate codes cannot be read off the shipped
    # program; this one computes them with the same kernels, so the twin can run in lockstep with XNNPACK.
    codes: bytes | None = None


def lower_fp32(net: nn.Module, example: torch.Tensor) -> Lowered:
    """``net`` (fp32, in eval mode) as an XNNPACK-delegated ExecuTorch program taking up to BATCH_BOUND images."""
    return _with_reference(net.eval(), example, "export")


def lower_int8(net: nn.Module, example: torch.Tensor, calibrate: Callable[[nn.Module], None], observer: str, per_channel: bool) -> Lowered:
    """``net`` quantized to int8 by PT2E with the XNNPACKQuantizer (calibrated by ``calibrate``, which runs the
    prepared module on the calibration images; ``observer``: robustgate's name of the activation observer), then
    lowered to XNNPACK."""
    with _quiet():
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

        quantizer = XNNPACKQuantizer().set_global(_quantization_config(observer, per_channel))
        prepared = prepare_pt2e(_exported(net.eval(), example, "ptq (xnnpack)").module(), quantizer)
    calibrate(prepared)
    with _quiet():
        converted = convert_pt2e(prepared)
    lowered = _with_reference(converted, example, "ptq (xnnpack)")
    return replace(lowered, codes=_codes_program(lowered, example))


def activation_quantizes(graph_module: torch.fx.GraphModule) -> list[torch.fx.Node]:
    """The graph's quantize ops, in order: each gives one activation's int8 codes (weights are int8 constants)."""
    quantize = torch.ops.quantized_decomposed.quantize_per_tensor.default
    return [node for node in graph_module.graph.nodes if node.target is quantize]


class _WithCodes(nn.Module):
    def __init__(self, graph_module: torch.fx.GraphModule) -> None:
        super().__init__()
        self.graph_module = graph_module

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.graph_module(x))


def _codes_program(lowered: Lowered, example: torch.Tensor) -> bytes | None:
    """The converted graph lowered (static batch: CODES_BATCH) with its activations' codes as outputs after the
    logits, if it passes :func:`_codes_are_the_shipped_kernels`; None otherwise (the twin then runs free)."""
    from robustgate.compressors.int8.twin import graph_logits

    graph_module = load_reference(lowered.reference)
    output = next(node for node in graph_module.graph.nodes if node.op == "output")
    output.args = ((graph_logits(graph_module), *activation_quantizes(graph_module)),)
    graph_module.graph._codegen = torch.fx.graph.CodeGen()  # flat outputs, not the exported program's one-item tree
    graph_module.recompile()
    program = _lowered(_exported(_WithCodes(graph_module), example, "ptq (xnnpack)", bound=None), "ptq (xnnpack)")
    return program if _codes_are_the_shipped_kernels(program, lowered.program, example) else None


def _codes_are_the_shipped_kernels(program: bytes, shipped: bytes, example: torch.Tensor) -> bool:
    """Whether the codes program's logits are the shipped program's, bit for bit, on seeded images (more than a
    call of either holds; each program's calls are checked against one-image calls when it first runs a batch)."""
    from robustgate.runtimes.executorch import BATCH_CHECKED, ExecuTorchNet

    images = torch.randn((BATCH_CHECKED + 3, *example.shape[1:]), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.equal(ExecuTorchNet(shipped)(images), ExecuTorchNet(program).outputs(images)[0])


def _with_reference(net: nn.Module, example: torch.Tensor, step: str) -> Lowered:
    saved = io.BytesIO()  # the twin runs on attack batches of any size: exported again without the program's bound
    torch.export.save(_exported(net, example, step, REFERENCE_BOUND), saved)
    return Lowered(_lowered(_exported(net, example, step), step), saved.getvalue())


def load_reference(saved: bytes) -> torch.fx.GraphModule:
    """The converted PT2E graph saved beside an int8 program, as a module."""
    with _quiet():
        import torchao.quantization.pt2e  # noqa: F401  (registers the quantized_decomposed ops the graph calls)

        return torch.export.load(io.BytesIO(saved)).module()


def _quantization_config(observer: str, per_channel: bool) -> Any:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import get_symmetric_quantization_config  # imported quietly by lower_int8
    from torchao.quantization.pt2e import observer as torchao_observers

    from robustgate.compressors.int8.observers import ACTIVATION_OBSERVERS

    config = get_symmetric_quantization_config(is_per_channel=per_channel)
    chosen = getattr(torchao_observers, ACTIVATION_OBSERVERS[observer]).with_args(eps=2**-12)
    activation = replace(config.input_activation, observer_or_fake_quant_ctr=chosen)
    return replace(config, input_activation=activation, output_activation=activation)


def _exported(net: nn.Module, example: torch.Tensor, step: str, bound: int | None = BATCH_BOUND) -> torch.export.ExportedProgram:
    """``net`` exported with a batch dimension of 1 to ``bound`` images; ``bound=None``: a static CODES_BATCH."""
    images = example[torch.arange(EXAMPLE_BATCH if bound is not None else CODES_BATCH) % len(example)]
    shapes = ({0: torch.export.Dim("batch", min=1, max=bound)},) if bound is not None else None
    try:
        with _quiet():
            return torch.export.export(net, (images,), dynamic_shapes=shapes, strict=True)
    except Exception as err:  # export reports unsupported Python as many different exception types
        raise CompressionError(
            f"{step}: torch.export(strict=True) cannot capture the model for ExecuTorch: {first_line(err)}",
            hint="ExecuTorch needs a forward() without data-dependent Python control flow or unsupported calls, and a "
            "float network (put the step after prune or distill, not after another ptq)",
        ) from None


def _lowered(program: torch.export.ExportedProgram, step: str) -> bytes:
    with _quiet():
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
    try:
        with _quiet():
            return bytes(to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)
    except Exception as err:  # EXIR's passes and the delegate preprocessors raise many kinds
        raise CompressionError(
            f"{step}: ExecuTorch cannot lower the model to XNNPACK: {first_line(err)}",
            hint="an op XNNPACK's partitioner or ExecuTorch's edge dialect does not take; gate the torch model, or "
            "the ONNX export (export: {format: onnx})",
        ) from None


@contextmanager
def _quiet() -> Iterator[None]:
    # torchao's quiet imports (pt2e.py), and EXIR's warnings about its own internals while lowering: not the user's concern.
    from robustgate.compressors.int8.pt2e import quiet_torchao

    with quiet_torchao(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"executorch|torch\._export")
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message="This API is experimental")  # ExecuTorch's pybindings
        yield

"""The differentiable twin of an ExecuTorch program robustgate lowered itself, for white-box attacks.

An XNNPACK-delegated program holds XNNPACK's packed kernels in opaque blobs: there is no graph in it to mirror, and
its intermediate codes cannot be read. What robustgate does have, for a program it made, is the converted PT2E
graph the program was lowered from (saved beside it): every quantize/dequantize pair XNNPACK fuses into its int8
kernels. The twin is that graph's PT2E twin (``compressors/int8/twin.py``), in lockstep with XNNPACK: the same graph
was lowered a second time with every activation's int8 codes as extra outputs (kept only if its logits are the
shipped program's bit for bit), and each rounding point passes XNNPACK's own codes forward; the output passes the
shipped program's logits, so the attack's loss scores what ships. (An fp32 program's twin is the float graph it was
lowered from, compared at the logits.)

Agreement (``min_twin_agreement``) is then judged as for ONNX twins: per image, every int8 layer reproduced within a
step from XNNPACK's own inputs, and the logits within one step of their grid (or 1e-3 of their size). Without the
exposed codes, the twin runs the graph's reference execution and is judged at the logits only. Measured: the test
CNN, a ResNet-18 and a MobileNetV3-small (110 rounding points, at 32 and 64 px) agree on every image and layer. A
program from elsewhere has no twin, and the protocol says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from robustgate.compressors.int8.twin import NoTwin, graph_logits, pt2e_twin
from robustgate.runtimes.onnx_twin import LOGIT_ATOL, LOGIT_RTOL

if TYPE_CHECKING:
    from robustgate.compressors.int8.lockstep import LockstepTwin
    from robustgate.runtimes.executorch import ExecuTorchNet


def executorch_twin(net: ExecuTorchNet, example: torch.Tensor) -> LockstepTwin:
    """The lockstep twin of ``net`` (see the module docstring); ``example``: a batch of its (normalised) inputs."""
    if net.reference is None:
        raise NoTwin(
            f"robustgate builds no twin of {net.name}, an ExecuTorch program made elsewhere: its XNNPACK delegate holds "
            "packed kernels, not a graph to mirror (programs robustgate lowers itself, with export: {format: executorch} or "
            "ptq: {backend: xnnpack}, have one)"
        )
    from torchao.quantization.pt2e import allow_exported_model_train_eval

    from robustgate.runtimes.executorch_lower import load_reference

    converted = allow_exported_model_train_eval(load_reference(net.reference))
    with torch.no_grad():
        logits = net(example)
    step = max(LOGIT_RTOL * float(logits.abs().max()) + LOGIT_ATOL, _output_grid(converted))
    return pt2e_twin(converted, net.forward, logit_step=step, codes=_xnnpack_codes(net, converted))


def _xnnpack_codes(net: ExecuTorchNet, converted: torch.fx.GraphModule) -> Callable[[torch.Tensor], dict[str, torch.Tensor]] | None:
    """XNNPACK's own int8 codes at each quantize op of the graph, read off the program lowered with them exposed."""
    from robustgate.runtimes.executorch import ExecuTorchNet
    from robustgate.runtimes.executorch_lower import activation_quantizes

    if net.codes is None:
        return None
    exposed, names = ExecuTorchNet(net.codes), [node.name for node in activation_quantizes(converted)]

    def codes(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: value.float() for name, value in zip(names, exposed.outputs(x)[1:], strict=True)}

    return codes


def _output_grid(converted: torch.fx.GraphModule) -> float:
    """The step of the int8 grid the graph's logits are dequantized from (0.0 when they are floats)."""
    logits = graph_logits(converted)
    dequantize = torch.ops.quantized_decomposed.dequantize_per_tensor.default
    if not isinstance(logits, torch.fx.Node) or logits.target is not dequantize:
        return 0.0
    scale = logits.args[1]
    return float(scale) if isinstance(scale, (int, float)) else 0.0

"""The differentiable twin of an ExecuTorch program robustgate lowered itself, for white-box attacks.

An XNNPACK-delegated program holds XNNPACK's packed kernels in opaque blobs: there is no graph in it to mirror, and
no way to read its intermediate codes. What robustgate does have, for a program it made, is the converted PT2E
graph the program was lowered from (saved beside it): every quantize/dequantize pair XNNPACK fuses into its int8
kernels. The twin is that graph's PT2E twin (``compressors/int8/twin.py``): forward it follows the graph's reference
execution at every quantize and the program's own logits at the output, so the attack's loss scores what ships.
(An fp32 program's twin is the float graph it was lowered from, compared at the logits.)

Because the program's intermediate codes cannot be read, agreement (``min_twin_agreement``) is judged at the logits,
where the runtime's own values are: an image agrees when the twin's logits are within one step of the int8 grid the
program's last layer is quantized to (or 1e-3 of their size for float logits). A kernel that computes another
network than the graph it came from shows there; a program from elsewhere has no twin, and the protocol says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from robustgate.compressors.int8.twin import NoTwin, pt2e_twin
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
    return pt2e_twin(converted, net.forward, logit_step=step)


def _output_grid(converted: torch.fx.GraphModule) -> float:
    """The step of the int8 grid the graph's logits are dequantized from (0.0 when they are floats)."""
    output = next(node for node in converted.graph.nodes if node.op == "output")
    flat = output.args[0]
    logits = flat[0] if isinstance(flat, (tuple, list)) else flat
    dequantize = torch.ops.quantized_decomposed.dequantize_per_tensor.default
    if not isinstance(logits, torch.fx.Node) or logits.target is not dequantize:
        return 0.0
    scale = logits.args[1]
    return float(scale) if isinstance(scale, (int, float)) else 0.0

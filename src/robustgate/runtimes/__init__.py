"""Edge runtimes that run a variant's artifact in place of PyTorch (optional extras, imported on use)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

# runtime -> (the modules that must import, the runtime's name, the extra that installs them)
RUNTIMES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "onnx": (("onnxruntime", "onnx"), "ONNX Runtime", "onnx"),
    "executorch": (("executorch",), "ExecuTorch", "executorch"),
}


def runtime_missing(runtime: str) -> str | None:
    """What ``runtime`` lacks on this machine, said after "needs" and naming the extra that installs it; None
    when it is installed."""
    modules, name, extra = RUNTIMES[runtime]
    absent = [module for module in modules if importlib.util.find_spec(module) is None]
    if absent:
        return f"{name}, which is not installed here ({', '.join(absent)}): pip install 'robustgate[{extra}]'"
    return None


def runtime_of(model: nn.Module) -> str:
    """What runs ``model``: the edge runtime of the artifact inside it, or eager PyTorch and its quantized engine."""
    import torch

    for module in model.modules():
        label = getattr(module, "runtime_label", None)
        if callable(label):
            return str(label())
    return f"eager PyTorch {torch.__version__} (quantized engine {torch.backends.quantized.engine})"

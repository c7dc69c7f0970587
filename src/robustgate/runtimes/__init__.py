"""Edge runtimes that run a variant's artifact in place of PyTorch (optional extras, imported on use)."""

from __future__ import annotations

import importlib.util

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

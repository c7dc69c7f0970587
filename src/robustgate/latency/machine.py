"""What a latency was measured on: it means nothing without the machine."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(threads: int, runtime: str | None = None) -> dict[str, str | int]:
    """The machine, and ``runtime`` (what ran the timed model: robustgate.runtimes.runtime_of) when known."""
    described: dict[str, str | int] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "threads": threads,
        "torch": torch.__version__,
        "quantized_engine": torch.backends.quantized.engine,
        "platform": platform.platform(),
    }
    if runtime is not None:
        described["runtime"] = runtime
    return described

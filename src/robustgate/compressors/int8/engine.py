"""What every int8 network shares: a quantized engine chosen per call, no autograd, a cacheable state."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from robustgate.errors import CompressionError


class Int8Net(nn.Module):
    """An int8 network. It runs on the CPU only and has no autograd through its kernels."""

    def cache_state(self) -> dict[str, Any]:
        """Tensors from which the path's ``restore`` rebuilds this network exactly."""
        raise NotImplementedError

    def stored_parameters(self) -> int:
        """Weights and biases as stored (int8 weights count one each)."""
        raise NotImplementedError

    def twin(self, example: torch.Tensor) -> nn.Module:
        """A differentiable fp32 network that mimics this one (see ``int8/twin.py``); ``example`` is a
        batch of this network's (normalised) inputs. Raises ``NoTwin`` saying what it cannot follow."""
        raise NotImplementedError


@contextmanager
def quantized_engine(backend: str) -> Iterator[None]:
    """Select the quantized kernel library for the duration, restoring the previous one."""
    if backend not in torch.backends.quantized.supported_engines:
        raise CompressionError(
            f"quantized engine '{backend}' is not available in this torch build "
            f"(available: {', '.join(e for e in torch.backends.quantized.supported_engines if e != 'none')})",
            hint="pick one of the available engines under ptq: backend:",
        )
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = backend
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


@contextmanager
def quiet_torch_ao() -> Iterator[None]:
    # torch.ao's deprecation notices are torch's business, not the gate's output.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao")
        warnings.filterwarnings(
            "ignore",
            message=r".*(torch\.ao\.quantization|quant_min and quant_max|reduce_range|quantized tensor creation).*",
        )
        yield


class QuantizedNet(Int8Net):
    """A torch.ao int8 network that selects its quantized engine on every call.

    Packed int8 weights belong to the engine they were packed for; running them
    under another (the process default, or one a later variant selected) is wrong
    or fails, so the model carries its engine wherever it is evaluated or timed.
    """

    def __init__(self, net: nn.Module, backend: str) -> None:
        super().__init__()
        self.quantized = net
        self.backend = backend

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with quantized_engine(self.backend):
            return self.quantized(images)

    def cache_state(self) -> dict[str, Any]:
        return {"state_dict": self.quantized.state_dict()}

    def twin(self, example: torch.Tensor) -> nn.Module:
        from robustgate.compressors.int8.twin import torch_ao_twin

        with quiet_torch_ao():
            return torch_ao_twin(self.quantized, lambda: quantized_engine(self.backend), example)

    def stored_parameters(self) -> int:
        total = 0
        for name, value in self.quantized.state_dict().items():
            if isinstance(value, torch.Tensor) and (name.endswith("weight") or name.endswith("bias")):
                total += value.numel()
            elif isinstance(value, tuple):  # quantized Linear packs (weight, bias)
                total += sum(v.numel() for v in value if isinstance(v, torch.Tensor))
        return total

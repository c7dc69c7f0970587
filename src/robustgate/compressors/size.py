"""Size of a model: parameters, multiply-accumulates per image, and bytes of its serialized state."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from robustgate.compressors.int8.engine import Int8Net


@dataclass(frozen=True)
class ModelSize:
    params: int | None  # None: not countable on this model (a foreign int8 graph hides its layers)
    macs: int | None
    bytes: int

    def as_dict(self) -> dict[str, int]:
        return {name: value for name, value in asdict(self).items() if value is not None}


def count_params(model: nn.Module) -> int:
    """Stored weights and biases (BatchNorm's running statistics are not parameters).

    int8 networks count their own, since each path stores weights differently."""
    if isinstance(model, Int8Net):
        return model.stored_parameters()
    return sum(
        value.numel() for name, value in model.state_dict().items() if name.endswith("weight") or name.endswith("bias")
    )


def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """MACs of one forward pass per image, from torch's own FLOP counter (FLOPs / 2)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(example[:1])
    return counter.get_total_flops() // 2


def serialized_bytes(model: nn.Module) -> int:
    shipped = getattr(model, "shipped_bytes", None)
    if callable(shipped):  # a runtime's network (runtimes/): the bytes of its model file, not of an empty torch state
        return int(shipped())
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()

"""What a quantization path is: how it turns an fp32 network into an int8 one, and back from the cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from robustgate.compressors.int8.engine import Int8Net
from robustgate.compressors.int8.params import PTQParams
from robustgate.registry import Registry

Calibrate = Callable[[nn.Module], None]
"""Feeds the calibration images (normalised, in batches) through an observed network."""


class QuantizationPath:
    """One way to produce int8 kernels. ``net`` is always the caller's own CPU copy in eval mode,
    taking normalised inputs; ``example`` is a normalised batch of the model's geometry."""

    calibrated: ClassVar[bool] = True  # False: activation ranges are measured at run time, no calibration

    def quantize(self, net: nn.Module, params: PTQParams, calibrate: Calibrate, example: torch.Tensor) -> Int8Net:
        raise NotImplementedError

    def restore(self, net: nn.Module, params: PTQParams, state: dict[str, Any], example: torch.Tensor) -> Int8Net:
        """Rebuild exactly what :meth:`quantize` made from its ``cache_state()``, without calibrating."""
        raise NotImplementedError


quantization_paths: Registry[QuantizationPath] = Registry("ptq path", base=QuantizationPath)

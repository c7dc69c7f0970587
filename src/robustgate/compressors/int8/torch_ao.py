"""The torch.ao paths share one shape: prepare (insert observers), calibrate, convert to int8 modules.

The converted modules' state_dict holds packed int8 weights and scales, so restoring is
prepare + convert without calibration, then loading that state.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import torch
from torch import nn

from robustgate.compressors.int8.engine import Int8Net, QuantizedNet, quantized_engine, quiet_torch_ao
from robustgate.compressors.int8.params import PTQParams
from robustgate.compressors.int8.path import Calibrate, QuantizationPath
from robustgate.models.state import load_state


Prepared = TypeVar("Prepared", bound=nn.Module)
"""What a path's ``prepare`` hands its ``convert`` (FX: a GraphModule; eager: the module tree itself)."""


class TorchAOPath(QuantizationPath, Generic[Prepared]):
    def prepare(self, net: nn.Module, params: PTQParams, example: torch.Tensor) -> Prepared:
        raise NotImplementedError

    def convert(self, prepared: Prepared, params: PTQParams) -> nn.Module:
        raise NotImplementedError

    def quantize(self, net: nn.Module, params: PTQParams, calibrate: Calibrate, example: torch.Tensor) -> Int8Net:
        with quantized_engine(params.backend), quiet_torch_ao():
            prepared = self.prepare(net, params, example)
            calibrate(prepared)
            return QuantizedNet(self.convert(prepared, params), params.backend)

    def restore(self, net: nn.Module, params: PTQParams, state: dict[str, Any], example: torch.Tensor) -> Int8Net:
        with quantized_engine(params.backend), quiet_torch_ao():
            quantized = self.convert(self.prepare(net, params, example), params)
            load_state(quantized, state["state_dict"])
        return QuantizedNet(quantized, params.backend)

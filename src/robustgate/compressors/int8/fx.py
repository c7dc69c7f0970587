"""Static int8 in FX graph mode (torch.ao): fuses conv+bn+relu and handles residual adds by tracing,
so it needs no edits to the user's model, only a forward() without data-dependent control flow."""

from __future__ import annotations

import torch
from torch import nn

from robustgate.compressors.int8.observers import qconfig_mapping
from robustgate.compressors.int8.params import PTQParams
from robustgate.compressors.int8.path import quantization_paths
from robustgate.compressors.int8.torch_ao import TorchAOPath
from robustgate.errors import CompressionError


class FXPath(TorchAOPath[torch.fx.GraphModule]):
    def prepare(self, net: nn.Module, params: PTQParams, example: torch.Tensor) -> torch.fx.GraphModule:
        from torch.ao.quantization.quantize_fx import prepare_fx

        try:
            return prepare_fx(net, qconfig_mapping(params), (example,))
        except Exception as err:  # symbolic tracing fails on data-dependent control flow
            raise CompressionError(
                f"ptq: the model cannot be traced for FX quantization: {type(err).__name__}: {err}",
                hint="FX graph mode needs a model without data-dependent Python control flow in forward(); "
                "backend: pt2e (torch.export) captures more models",
            ) from None

    def convert(self, prepared: torch.fx.GraphModule, params: PTQParams) -> nn.Module:
        from torch.ao.quantization.quantize_fx import convert_fx

        return convert_fx(prepared)


quantization_paths.register("fx")(FXPath())

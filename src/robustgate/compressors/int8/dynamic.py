"""Dynamic int8 (torch.ao): Linear weights stored in int8, activations quantized per batch at run time.

No calibration. Convolutions stay fp32, so on a CNN only the classifier head shrinks; it is the
standard path for Linear-heavy models (ViT heads, MLPs).
"""

from __future__ import annotations

import torch
from torch import nn

from robustgate.compressors.int8.params import PTQParams
from robustgate.compressors.int8.path import quantization_paths
from robustgate.compressors.int8.torch_ao import TorchAOPath
from robustgate.errors import CompressionError


class DynamicPath(TorchAOPath[nn.Module]):
    calibrated = False

    def prepare(self, net: nn.Module, params: PTQParams, example: torch.Tensor) -> nn.Module:
        if not any(isinstance(m, nn.Linear) for m in net.modules()):
            raise CompressionError(
                "ptq: method: dynamic quantizes Linear layers only, and this model has none",
                hint="use method: fx (static int8 for convolutions too) or backend: pt2e",
            )
        return net

    def convert(self, prepared: nn.Module, params: PTQParams) -> nn.Module:
        from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

        # torch's default for dynamic Linear is one scale per tensor; per_channel: true asks for one per row.
        qconfig = per_channel_dynamic_qconfig if params.per_channel else default_dynamic_qconfig
        return quantize_dynamic(prepared, {nn.Linear: qconfig}, dtype=torch.qint8)


quantization_paths.register("dynamic")(DynamicPath())

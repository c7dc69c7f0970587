"""torch.ao qconfigs from the spec's observer and weight granularity (FX, eager and dynamic paths)."""

from __future__ import annotations

from typing import Any

import torch

from robustgate.compressors.int8.params import PTQParams

ACTIVATION_OBSERVERS = {
    "histogram": "HistogramObserver",
    "minmax": "MinMaxObserver",
    "moving_average": "MovingAverageMinMaxObserver",
}


def static_qconfig(params: PTQParams) -> Any:
    """The global qconfig: the spec's activation observer, symmetric int8 weights per channel or per tensor."""
    from torch.ao.quantization import QConfig, observer

    # fbgemm/x86 kernels can overflow 16-bit accumulators on CPUs without VNNI unless activations use 7 bits.
    reduce_range = params.backend in ("x86", "fbgemm")
    activation = getattr(observer, ACTIVATION_OBSERVERS[params.observer]).with_args(reduce_range=reduce_range)
    if per_channel(params):
        weight = observer.PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    else:
        weight = observer.MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    return QConfig(activation=activation, weight=weight)


def per_channel(params: PTQParams) -> bool:
    return params.per_channel if params.per_channel is not None else params.backend != "qnnpack"


def qconfig_mapping(params: PTQParams) -> Any:
    """The engine's default FX mapping (fixed-range ops such as sigmoid keep theirs) with the spec's global qconfig."""
    from torch.ao.quantization import get_default_qconfig_mapping

    return get_default_qconfig_mapping(params.backend).set_global(static_qconfig(params))

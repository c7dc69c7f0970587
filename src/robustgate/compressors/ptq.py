"""Post-training static int8 quantization (FX graph mode, torch.ao).

FX graph mode fuses conv+bn+relu, handles residual adds, and needs no
QuantStub edits to the user's model, so it works on any traceable torchvision
classifier. The result runs real int8 kernels (``torch.ao.nn.quantized``
modules, fbgemm/oneDNN under the ``x86`` engine) and has no autograd.
torch.ao is deprecated upstream in favour of torchao's PT2E; PT2E needs a
25–75 s ``torch.compile`` per model and arrives with the compression suite.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from pydantic import Field

from robustgate.compressors.base import CompressionStep, StepContext, compression_steps
from robustgate.data.splits import stratified_sample
from robustgate.errors import CompressionError
from robustgate.models.classifier import Classifier
from robustgate.spec.fields import DatasetRef, Params


class CalibrateParams(Params):
    on: DatasetRef
    samples: int = Field(256, ge=1)
    batch_size: int = Field(32, ge=1)


class PTQParams(Params):
    backend: Literal["x86", "fbgemm", "qnnpack", "onednn"] = "x86"
    method: Literal["fx"] = "fx"
    calibrate: CalibrateParams | None = None  # default: 256 images of the baseline's training set
    # How activation ranges are read off the calibration images: a histogram search that minimises
    # the quantization error (torch's default), the plain min/max, or a moving average of min/max.
    observer: Literal["histogram", "minmax", "moving_average"] = "histogram"
    # One scale per output channel for weights; None: the engine's default (per channel except on qnnpack).
    per_channel: bool | None = None


_ACTIVATION_OBSERVERS = {
    "histogram": "HistogramObserver",
    "minmax": "MinMaxObserver",
    "moving_average": "MovingAverageMinMaxObserver",
}


def qconfig_mapping(params: PTQParams) -> Any:
    """The engine's default mapping with the spec's observer and weight granularity as the global qconfig."""
    from torch.ao.quantization import QConfig, get_default_qconfig_mapping, observer

    # fbgemm/x86 kernels can overflow 16-bit accumulators on CPUs without VNNI unless activations use 7 bits.
    reduce_range = params.backend in ("x86", "fbgemm")
    per_channel = params.per_channel if params.per_channel is not None else params.backend != "qnnpack"
    activation = getattr(observer, _ACTIVATION_OBSERVERS[params.observer]).with_args(reduce_range=reduce_range)
    if per_channel:
        weight = observer.PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    else:
        weight = observer.MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    return get_default_qconfig_mapping(params.backend).set_global(QConfig(activation=activation, weight=weight))


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
def _quiet_torch_ao() -> Iterator[None]:
    # torch.ao's deprecation notices are torch's business, not the gate's output.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao")
        warnings.filterwarnings(
            "ignore",
            message=r".*(torch\.ao\.quantization|quant_min and quant_max|reduce_range|quantized tensor creation).*",
        )
        yield


class QuantizedNet(torch.nn.Module):
    """An int8 network that selects its quantized engine on every call.

    Packed int8 weights belong to the engine they were packed for; running them
    under another (the process default, or one a later variant selected) is wrong
    or fails, so the model carries its engine wherever it is evaluated or timed.
    """

    def __init__(self, net: torch.nn.Module, backend: str) -> None:
        super().__init__()
        self.quantized = net
        self.backend = backend

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with quantized_engine(self.backend):
            return self.quantized(images)


class PostTrainingQuantization(CompressionStep):
    Params = PTQParams
    preserves_macs = True
    differentiable = False

    def apply(self, model: Classifier, params: PTQParams, ctx: StepContext) -> Classifier:
        model = copy.deepcopy(model).cpu().eval()  # torch.ao quantizes on the CPU; the parent stays as it is
        calibration = self._calibration_images(params, ctx)
        batch = params.calibrate.batch_size if params.calibrate else 32
        with torch.inference_mode():
            finite = all(torch.isfinite(model(calibration[s : s + batch])).all() for s in range(0, len(calibration), batch))
        if not finite:  # observers would fail deep inside torch on NaN ranges
            raise CompressionError(
                "ptq: the model produces NaN or infinite outputs on the calibration images, so no int8 ranges exist",
                hint="fix the fp32 model first (check its weights and input normalisation)",
            )
        with quantized_engine(params.backend), _quiet_torch_ao():
            prepared = self._prepare(model, params, ctx)
            ctx.progress(f"ptq: calibrating on {len(calibration)} images")
            with torch.inference_mode():
                for start in range(0, len(calibration), batch):
                    prepared(model.normalize(calibration[start : start + batch]))
            from torch.ao.quantization.quantize_fx import convert_fx

            return model.with_net(QuantizedNet(convert_fx(prepared), params.backend))

    def restore(self, parent: Classifier, params: PTQParams, state: dict[str, Any], ctx: StepContext) -> Classifier:
        from torch.ao.quantization.quantize_fx import convert_fx

        parent = copy.deepcopy(parent).cpu().eval()
        with quantized_engine(params.backend), _quiet_torch_ao():
            quantized = convert_fx(self._prepare(parent, params, ctx))
            quantized.load_state_dict(state["state_dict"])
        return parent.with_net(QuantizedNet(quantized, params.backend))

    def state(self, model: Classifier) -> dict[str, Any]:
        return {"state_dict": model.net.quantized.state_dict()}

    @staticmethod
    def _prepare(model: Classifier, params: PTQParams, ctx: StepContext) -> torch.nn.Module:
        from torch.ao.quantization.quantize_fx import prepare_fx

        try:  # callers pass their own CPU copy, which prepare_fx may fuse in place
            return prepare_fx(model.net, qconfig_mapping(params), (model.normalize(ctx.example),))
        except Exception as err:  # symbolic tracing fails on data-dependent control flow
            raise CompressionError(
                f"ptq: the model cannot be traced for FX quantization: {type(err).__name__}: {err}",
                hint="FX graph mode needs a model without data-dependent Python control flow in forward()",
            ) from None

    @staticmethod
    def _calibration_images(params: PTQParams, ctx: StepContext) -> torch.Tensor:
        if params.calibrate is not None:
            name, samples = params.calibrate.on, params.calibrate.samples
        elif ctx.default_data is not None:
            name, samples = ctx.default_data, 256
        else:
            raise CompressionError(
                "ptq needs calibration images and the baseline has no training set to borrow them from",
                hint="add calibrate: {on: DATASET, samples: 256} under ptq:",
            )
        data = ctx.dataset(name)
        chosen = data.subset(stratified_sample(data.labels, samples, ctx.seed))
        return chosen.floats()


compression_steps.register("ptq")(PostTrainingQuantization())

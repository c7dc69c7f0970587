"""Post-training int8 quantization: the ``ptq`` step.

The step picks calibration images, checks the fp32 model is finite on them, and hands a CPU copy
of the network to one quantization path (``robustgate.compressors.int8``): torch.ao FX (default),
eager or dynamic under a quantized engine, or torchao's PT2E compiled by inductor; or quantizes it
for an edge runtime, which then runs it: ONNX Runtime's static quantizer (``backend: onnxruntime``)
or ExecuTorch's XNNPACK int8 flow (``backend: xnnpack``). Every path gives real int8 kernels and
no autograd; the step then runs the int8 model once, so a model a
path cannot run fails here with the reason, not later inside an evaluation.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from robustgate.compressors.base import CompressionStep, StepContext, compression_steps
from robustgate.compressors.int8.params import RUNTIME_PATHS, CalibrateParams, PTQParams
from robustgate.errors import CompressionError, RobustgateError, first_line

if TYPE_CHECKING:
    import torch
    from torch import nn

    from robustgate.compressors.int8.path import Calibrate, QuantizationPath
    from robustgate.models.classifier import Classifier

__all__ = ["CalibrateParams", "PTQParams", "PostTrainingQuantization"]


class PostTrainingQuantization(CompressionStep):
    Params = PTQParams
    preserves_macs = True
    differentiable = False

    def apply(self, model: Classifier, params: PTQParams, ctx: StepContext) -> Classifier:
        # torch only when quantizing: validating a spec must not import it
        from robustgate.compressors.int8.engine import Int8Net

        if isinstance(model.net, Int8Net):
            raise CompressionError(
                "ptq: the model is already int8", hint="quantize once: keep one ptq step in the variant, last"
            )
        model = copy.deepcopy(model).cpu().eval()  # paths quantize on the CPU; the parent stays as it is
        if params.path == "onnxruntime":
            return self._checked(model, self._onnxruntime(model, params, ctx), params, ctx)
        if params.path == "xnnpack":
            return self._checked(model, self._xnnpack(model, params, ctx), params, ctx)
        path = _quantization_path(params.path)
        calibrate = self._calibration(model, params, ctx) if path.calibrated else _nothing
        ctx.progress(f"ptq: quantizing with the {params.path} path ({params.backend})")
        example = model.normalize(ctx.example)
        return self._checked(model, path.quantize(model.net, params, calibrate, example), params, ctx)

    def restore(self, parent: Classifier, params: PTQParams, state: dict[str, Any], ctx: StepContext) -> Classifier:
        parent = copy.deepcopy(parent).cpu().eval()
        if params.path == "onnxruntime":
            from robustgate.runtimes.onnx import OnnxRuntimeNet

            self._require_runtime(params)
            return self._checked(parent, OnnxRuntimeNet(state["onnx"]), params, ctx)
        if params.path == "xnnpack":
            from robustgate.runtimes.executorch import ExecuTorchNet

            self._require_runtime(params)
            return self._checked(parent, ExecuTorchNet(state["pte"], state["reference"], state["codes"]), params, ctx)
        net = _quantization_path(params.path).restore(parent.net, params, state, parent.normalize(ctx.example))
        return self._checked(parent, net, params, ctx)

    def state(self, model: Classifier) -> dict[str, Any]:
        from robustgate.compressors.int8.engine import Int8Net
        from robustgate.runtimes.executorch import ExecuTorchNet
        from robustgate.runtimes.onnx import OnnxRuntimeNet

        net = model.net
        if isinstance(net, OnnxRuntimeNet):
            return {"onnx": net.source}
        if isinstance(net, ExecuTorchNet):
            return {"pte": net.source, "reference": net.reference, "codes": net.codes}
        if not isinstance(net, Int8Net):
            raise TypeError(f"ptq caches the state of its own int8 networks, not of a {type(net).__name__}")
        return net.cache_state()

    def runs_in_runtime(self, params: PTQParams) -> bool:
        return params.path in RUNTIME_PATHS

    def missing_runtime(self, params: PTQParams, ctx: StepContext | None = None) -> str | None:
        from robustgate.runtimes import runtime_missing

        return runtime_missing(RUNTIME_PATHS[params.path]) if params.path in RUNTIME_PATHS else None

    def _require_runtime(self, params: PTQParams) -> None:
        missing = self.missing_runtime(params)
        if missing is not None:
            raise CompressionError(f"ptq: backend {params.backend} needs {missing}", hint="install the extra, or drop the variant")

    def _onnxruntime(self, model: Classifier, params: PTQParams, ctx: StepContext) -> nn.Module:
        """The fp32 model exported to ONNX (as the export step does), then ONNX Runtime's static int8 quantizer
        calibrated on the spec's images; the result runs in ONNX Runtime."""
        from robustgate.compressors.export import ExportParams, onnx_bytes
        from robustgate.runtimes.onnx import OnnxRuntimeNet
        from robustgate.runtimes.onnx_quantize import quantize_static_onnx

        self._require_runtime(params)
        images = self._calibration_images(params, ctx)
        self._require_finite(model, images, params)
        ctx.progress("ptq: exporting to ONNX, then quantizing in ONNX Runtime")
        fp32 = onnx_bytes(model.net, model.normalize(ctx.example), ExportParams(format="onnx"))
        batch = params.calibrate.batch_size if params.calibrate else 32
        batches = (model.normalize(images[start : start + batch]) for start in range(0, len(images), batch))
        per_channel = True if params.per_channel is None else params.per_channel
        # Unless told, ORT's own default (MinMax): the int8 model a team gets from quantize_static as it ships.
        observer = params.observer if "observer" in params.model_fields_set else "minmax"
        ctx.progress(f"ptq: calibrating on {len(images)} images in ONNX Runtime ({observer})")
        try:
            quantized = quantize_static_onnx(fp32, batches, observer, per_channel, params.reduce_range is not False)
        except Exception as err:  # ORT's quantizer and its numpy histograms raise many kinds
            raise CompressionError(
                f"ptq: ONNX Runtime's static quantizer failed ({observer} calibration): {first_line(err)}",
                hint="observer: minmax (ORT's default) reads plain ranges; the histogram observer needs every "
                "activation to vary over the calibration images",
            ) from None
        return OnnxRuntimeNet(quantized)

    def _xnnpack(self, model: Classifier, params: PTQParams, ctx: StepContext) -> nn.Module:
        """PT2E with ExecuTorch's XNNPACKQuantizer, calibrated on the spec's images, lowered to an XNNPACK-delegated
        ExecuTorch program that runs in ExecuTorch's runtime (the converted graph kept for the twin)."""
        from robustgate.runtimes.executorch import ExecuTorchNet
        from robustgate.runtimes.executorch_lower import lower_int8

        self._require_runtime(params)
        calibrate = self._calibration(model, params, ctx)
        ctx.progress("ptq: PT2E with the XNNPACKQuantizer, then lowering to an ExecuTorch program (XNNPACK)")
        per_channel = True if params.per_channel is None else params.per_channel
        lowered = lower_int8(model.net, model.normalize(ctx.example), calibrate, params.observer, per_channel)
        return ExecuTorchNet(lowered.program, lowered.reference, lowered.codes)

    @staticmethod
    def _checked(parent: Classifier, net: nn.Module, params: PTQParams, ctx: StepContext) -> Classifier:
        """The int8 classifier, after one forward pass: kernels that cannot run fail here, and the
        PT2E path compiles now, inside the step, rather than inside the first evaluation."""
        import torch

        model = parent.with_net(net).eval()
        if params.path == "pt2e":
            ctx.progress("ptq: compiling the int8 graph with inductor (tens of seconds on a small CPU)")
        # torch.ao's x86 engine caches oneDNN kernel data on the first run (pytorch/pytorch#84470); other
        # batch sizes then run 2-5x slower here. So the trial runs on a copy: the model's first real use decides.
        # PT2E runs on the model itself: the compile must happen now, and inductor serves every size.
        trial = model if params.path == "pt2e" else copy.deepcopy(model)
        try:
            with torch.inference_mode():
                trial(ctx.example)
        except RobustgateError:
            raise
        except Exception as err:  # kernels and compilers fail with many exception types
            raise CompressionError(
                f"ptq: the int8 model from the {params.path} path fails to run: {first_line(err)}",
                hint=_OTHER_PATHS[params.path],
            ) from None
        return model

    def _calibration(self, model: Classifier, params: PTQParams, ctx: StepContext) -> Calibrate:
        import torch

        images = self._calibration_images(params, ctx)
        self._require_finite(model, images, params)
        batch = params.calibrate.batch_size if params.calibrate else 32

        def calibrate(prepared: nn.Module) -> None:
            ctx.progress(f"ptq: calibrating on {len(images)} images")
            with torch.inference_mode():
                for start in range(0, len(images), batch):
                    prepared(model.normalize(images[start : start + batch]))

        return calibrate

    @staticmethod
    def _require_finite(model: Classifier, images: torch.Tensor, params: PTQParams) -> None:
        import torch

        batch = params.calibrate.batch_size if params.calibrate else 32
        with torch.inference_mode():
            finite = all(torch.isfinite(model(images[s : s + batch])).all() for s in range(0, len(images), batch))
        if not finite:  # observers would fail deep inside torch (or ORT) on NaN ranges
            raise CompressionError(
                "ptq: the model produces NaN or infinite outputs on the calibration images, so no int8 ranges exist",
                hint="fix the fp32 model first (check its weights and input normalisation)",
            )

    @staticmethod
    def _calibration_images(params: PTQParams, ctx: StepContext) -> torch.Tensor:
        from robustgate.data.splits import stratified_sample

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


def _quantization_path(name: str) -> QuantizationPath:
    """The registered quantization path ``name``; the paths register when first needed, as they import torch
    (and validating a spec, which reads ``ptq:`` steps, must not)."""
    from robustgate.compressors.int8 import dynamic, eager, fx, pt2e  # noqa: F401  (registers the paths)
    from robustgate.compressors.int8.path import quantization_paths

    return quantization_paths.get(name)


_OTHER_PATHS = {
    "fx": "try backend: pt2e, or method: dynamic for the Linear layers only",
    "eager": "eager mode needs FloatFunctional for tensor arithmetic; try method: fx or backend: pt2e",
    "dynamic": "try method: fx or backend: pt2e",
    "pt2e": "inductor needs a working C++ compiler (g++) for CPU kernels; or try backend: x86 (FX graph mode)",
    "onnxruntime": "try backend: x86 (torch.ao FX graph mode), or export: {format: onnx} for the fp32 model in ONNX Runtime",
    "xnnpack": "try backend: onnxruntime, or export: {format: executorch} for the fp32 model in ExecuTorch",
}


def _nothing(prepared: nn.Module) -> None:
    """Dynamic quantization measures activation ranges at run time: nothing to calibrate."""


compression_steps.register("ptq")(PostTrainingQuantization())

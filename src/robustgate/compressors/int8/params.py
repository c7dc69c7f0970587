"""What a ``ptq:`` step may say, and which combinations make sense."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from robustgate.spec.fields import DatasetRef, Params


class CalibrateParams(Params):
    on: DatasetRef
    samples: int = Field(256, ge=1)
    batch_size: int = Field(32, ge=1)


class PTQParams(Params):
    # x86/fbgemm/qnnpack/onednn: a torch.ao quantized engine (kernels chosen at run time);
    # pt2e: torchao's PT2E flow (torch.export, X86InductorQuantizer, inductor-compiled int8 kernels);
    # onnxruntime: the model exported to ONNX, quantized by ONNX Runtime's static quantizer (QDQ) and run in it;
    # xnnpack: PT2E with ExecuTorch's XNNPACKQuantizer, lowered to an XNNPACK-delegated ExecuTorch program, run in it.
    backend: Literal["x86", "fbgemm", "qnnpack", "onednn", "pt2e", "onnxruntime", "xnnpack"] = "x86"
    # torch.ao only. fx: static int8 in FX graph mode (any traceable model); eager: static int8 in
    # eager mode (torchvision ResNets, or a model with its own QuantStub/DeQuantStub); dynamic:
    # int8 Linear weights, activations quantized per batch at run time (no calibration).
    method: Literal["fx", "eager", "dynamic"] = "fx"
    calibrate: CalibrateParams | None = None  # default: 256 images of the baseline's training set
    # How activation ranges are read off the calibration images: a histogram search that minimises
    # the quantization error (torch's default), the plain min/max, or a moving average of min/max.
    observer: Literal["histogram", "minmax", "moving_average"] = "histogram"
    # One scale per output channel for weights; None: the engine's default (per channel except on qnnpack).
    per_channel: bool | None = None
    # backend: onnxruntime only. 7-bit weights (ORT's reduce_range), default on: the int8 kernels of x86 CPUs
    # without VNNI (AVX2, AVX-512 before VNNI) sum pairs of 8-bit products in 16 bits, which saturate on full-range
    # weights (measured on the test CNN on an AVX2 CPU: accuracy 0.939 with 8-bit weights, 0.989 with 7-bit, as
    # fp32). false: full 8-bit weights, for targets whose int8 kernels do not saturate (VNNI, ARM dot product).
    reduce_range: bool | None = None

    @model_validator(mode="after")
    def _combination_makes_sense(self) -> "PTQParams":
        given = self.model_fields_set
        if self.backend == "pt2e" and "method" in given:
            raise ValueError(
                "backend: pt2e has its own graph capture (torch.export) and is static int8; "
                "drop method:, or pick a torch.ao backend (x86, qnnpack) for method: eager/dynamic"
            )
        if self.backend == "onnxruntime" and "method" in given:
            raise ValueError(
                "backend: onnxruntime exports the model to ONNX and quantizes it statically in ONNX Runtime; "
                "drop method:, or pick a torch.ao backend (x86, qnnpack) for method: eager/dynamic"
            )
        if self.backend == "xnnpack" and "method" in given:
            raise ValueError(
                "backend: xnnpack quantizes statically with PT2E (torch.export) and lowers the model to an ExecuTorch "
                "program; drop method:, or pick a torch.ao backend (x86, qnnpack) for method: eager/dynamic"
            )
        if self.backend != "onnxruntime" and self.reduce_range is not None:
            raise ValueError(
                "reduce_range: chooses ONNX Runtime's 7-bit weights (backend: onnxruntime); torch's x86 and fbgemm "
                "engines always quantize activations to 7 bits for the same reason: drop reduce_range:"
            )
        if self.backend == "pt2e" and self.per_channel is False:
            raise ValueError("backend: pt2e (X86InductorQuantizer) quantizes weights per channel only; drop per_channel: false")
        if self.method == "dynamic":
            needless = sorted(given & {"calibrate", "observer"})
            if needless:
                raise ValueError(
                    f"method: dynamic measures activation ranges on each batch at run time, so "
                    f"{' and '.join(needless)} {'has' if len(needless) == 1 else 'have'} no effect; drop "
                    f"{'it' if len(needless) == 1 else 'them'}, or use method: fx for static int8"
                )
        return self

    @property
    def path(self) -> str:
        """The registered quantization path that carries out these parameters."""
        return self.backend if self.backend in RUNTIME_PATHS or self.backend == "pt2e" else self.method


# Backends whose int8 model runs in an edge runtime rather than in PyTorch, and the runtime (robustgate.runtimes).
RUNTIME_PATHS = {"onnxruntime": "onnx", "xnnpack": "executorch"}

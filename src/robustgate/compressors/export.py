"""``export: {format: onnx | executorch}``: the variant's model as the file an edge runtime ships, evaluated in it.

The network entering the step (the baseline, or a pruned or distilled one) is exported and from then on runs in the
runtime: ``onnx``: ``torch.onnx.export`` (the dynamo exporter, batch dimension dynamic), run by ONNX Runtime
(``robustgate.runtimes.onnx``); ``executorch``: ``torch.export`` lowered to an XNNPACK-delegated ExecuTorch program
(``.pte``), run by ExecuTorch's runtime (``robustgate.runtimes.executorch``). Predictions, the attacks' queries and
latency all measure the runtime's kernels. (int8 for either runtime: ``ptq: {backend: onnxruntime | xnnpack}``.)
The model's normalisation stays in PyTorch in front of it, so the exported graph takes normalised images, as an
artifact with ``input: normalized`` does.
An export is checked against its parent on seeded images when it is made; a program that computes other logits is
an error, not a variant. The cache keeps the serialized model; its size is those bytes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from robustgate.compressors.base import CompressionStep, StepContext, compression_steps
from robustgate.errors import CompressionError, first_line
from robustgate.spec.fields import Params

if TYPE_CHECKING:
    import torch
    from torch import nn

    from robustgate.models.classifier import Classifier

# How far an fp32 export's logits may be from its parent's: float reassociation in another runtime's kernels, not
# a different network (measured max |diff| on the test networks: ~1e-7 of logits of size ~10).
RTOL, ATOL = 1e-3, 1e-4


class ExportParams(Params):
    format: Literal["onnx", "executorch"]
    opset: int | None = Field(default=None, ge=17)  # onnx only; None: the exporter's default opset

    @model_validator(mode="after")
    def _opset_is_onnx(self) -> "ExportParams":
        if self.format != "onnx" and self.opset is not None:
            raise ValueError(f"opset: is an ONNX operator-set version; format {self.format} has none: drop opset:")
        return self


class Export(CompressionStep):
    """The model entering the step, exported and run in an edge runtime."""

    Params = ExportParams
    preserves_macs = True
    differentiable = False  # a runtime has no autograd: attacks use the indirect legs

    def apply(self, model: Classifier, params: ExportParams, ctx: StepContext) -> Classifier:
        self._require_runtime(params)
        example = model.normalize(ctx.example)
        if params.format == "executorch":
            from robustgate.runtimes.executorch_lower import lower_fp32

            ctx.progress("export: torch.export, lowered to an ExecuTorch program (XNNPACK)")
            lowered = lower_fp32(model.net, example)
            exported = self._runtime(model, params, lowered.program, lowered.reference)
        else:
            ctx.progress("export: torch.onnx.export, then ONNX Runtime")
            exported = self._runtime(model, params, onnx_bytes(model.net, example, params))
        _check_agreement(model, exported, ctx.example, params)
        return exported

    def state(self, model: Classifier) -> dict[str, Any]:
        from robustgate.runtimes.executorch import ExecuTorchNet
        from robustgate.runtimes.onnx import OnnxRuntimeNet

        net = model.net
        assert isinstance(net, (OnnxRuntimeNet, ExecuTorchNet)) and isinstance(net.source, bytes)  # what apply() made
        if isinstance(net, ExecuTorchNet):
            return {"pte": net.source, "reference": net.reference}
        return {"onnx": net.source}

    def runs_in_runtime(self, params: ExportParams) -> bool:
        return True

    def restore(self, parent: Classifier, params: ExportParams, state: dict[str, Any], ctx: StepContext) -> Classifier:
        self._require_runtime(params)
        if params.format == "executorch":
            return self._runtime(parent, params, state["pte"], state["reference"])
        return self._runtime(parent, params, state["onnx"])

    def missing_runtime(self, params: ExportParams, ctx: StepContext | None = None) -> str | None:
        from robustgate.runtimes import runtime_missing

        return runtime_missing(params.format)

    def _require_runtime(self, params: ExportParams) -> None:
        missing = self.missing_runtime(params)
        if missing is not None:
            raise CompressionError(f"export: format {params.format} needs {missing}", hint="install the extra, or drop the variant")

    @staticmethod
    def _runtime(parent: Classifier, params: ExportParams, serialized: bytes, reference: bytes | None = None) -> Classifier:
        net: nn.Module
        try:
            if params.format == "executorch":
                from robustgate.runtimes.executorch import ExecuTorchNet

                net = ExecuTorchNet(serialized, reference)
            else:
                from robustgate.runtimes.onnx import OnnxRuntimeNet

                net = OnnxRuntimeNet(serialized)
        except CompressionError as err:
            raise CompressionError(f"export: {err.message}", hint=err.hint) from None
        return parent.with_net(net).eval()


def onnx_bytes(net: nn.Module, example: torch.Tensor, params: ExportParams) -> bytes:
    """``net`` as a serialized ONNX model whose batch dimension is dynamic (robustgate evaluates any batch size)."""
    import torch

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        try:
            torch.onnx.export(
                net.eval(), (example,), str(path), dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},),
                opset_version=params.opset, external_data=False, verbose=False,
            )
        except Exception as err:  # the exporter raises its own kinds for each stage it fails at
            raise CompressionError(
                f"export: torch.onnx.export cannot export the model: {first_line(err)}",
                hint="export takes a float network that torch.export can capture: put it after prune or distill, not "
                "after ptq (for an int8 ONNX model, quantize the export in ONNX Runtime)",
            ) from None
        return path.read_bytes()


def _check_agreement(parent: Classifier, exported: Classifier, example: torch.Tensor, params: ExportParams) -> None:
    import torch

    generator = torch.Generator().manual_seed(0)
    images = torch.rand((5, *example.shape[1:]), generator=generator)  # an odd batch size: the batch is dynamic
    with torch.no_grad():
        expected, got = parent(images), exported(images)
    if not torch.allclose(got, expected, rtol=RTOL, atol=ATOL):
        raise CompressionError(
            f"export: the {'ExecuTorch program' if params.format == 'executorch' else 'ONNX model'} computes other "
            f"logits than the network it was exported from (max |difference| "
            f"{float((got - expected).abs().max()):.3g} on seeded images, allowed {ATOL} + {RTOL} x |logit|)",
            hint="an exporter or runtime bug on one of the network's ops; export a simpler graph or gate the torch model",
        )


compression_steps.register("export")(Export())

"""Bring your own variant: the ``artifact`` step loads a model a team compressed elsewhere.

``variants: {my-qat: {artifact: models/qat.pt}}``, or ``{artifact: {path: ..., format: ..., arch: ...}}``:

- ``state_dict``: tensors for the spec's architecture (or for ``arch:``/``kwargs:``, e.g. a narrower student);
- ``module``: a whole pickled ``nn.Module`` (a QAT-converted model, say); unpickling runs code, so it needs
  ``trusted: true``;
- ``torchscript``: a ``torch.jit.save`` file;
- ``export``: a ``torch.export.save`` program (``.pt2``);
- ``onnx``: an ONNX model (``.onnx``, fp32 or int8 QDQ/QOperator), run by ONNX Runtime's CPU provider
  (``robustgate[onnx]``; without it the variant's items skip, saying which extra to install);
- ``executorch``: an ExecuTorch program (``.pte``, e.g. XNNPACK-delegated fp32 or int8), run by ExecuTorch's runtime
  (``robustgate[executorch]``).

The format is read off the suffix (``.pt2``, ``.onnx``, ``.pte``) or, for ``.pt``/``.pth`` files, off the zip archive's members
(TorchScript writes ``code/``, ``torch.save`` a ``data.pkl`` alone). The artifact is the variant's model
itself, so the step comes first; the spec's baseline is its fp32 reference (accuracy drops, the transfer leg of
attacks, latency speed-ups). Its size is its bytes on disk (an ONNX model's external-data files included). An artifact
without autograd (int8 kernels) is attacked by the protocol's indirect legs, and white-box through a twin where its
graph can be mirrored: an ONNX model (``runtimes/onnx_twin.py``) and a PT2E int8 ``torch.export`` program. Of a
TorchScript int8 model or an ExecuTorch program from elsewhere robustgate builds no twin, so a contract must accept
going without that leg by name (``accept_missing: [twin]``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from robustgate.compressors.base import CompressionStep, StepContext, compression_steps
from robustgate.errors import CompressionError, first_line
from robustgate.spec.fields import Params

if TYPE_CHECKING:
    from torch import nn

    from robustgate.models.classifier import Classifier

Format = Literal["state_dict", "module", "torchscript", "export", "onnx", "executorch"]
FORMATS: tuple[str, ...] = ("state_dict", "module", "torchscript", "export", "onnx", "executorch")
SUFFIX_FORMATS = {".pt2": "export", ".onnx": "onnx", ".pte": "executorch"}
RUNTIME_FORMATS = {"onnx": "onnx", "executorch": "executorch"}  # format -> the runtime (robustgate.runtimes) that runs it
# Formats of edge runtimes that this release does not run; named so the message says so instead of "unknown".
RUNTIME_SUFFIXES = {".tflite": "TensorFlow Lite"}


class ArtifactParams(Params):
    SHORT_FORM: ClassVar[str] = "the artifact's path alone, relative to the spec file"  # `artifact: models/own.pt`

    path: str = Field(min_length=1)  # relative to the spec file; ${VAR} expands from the environment
    format: Format | None = None  # None: from the suffix and the file's contents
    arch: str | None = None  # state_dict only: the architecture it was saved from (default: the spec's model)
    kwargs: dict[str, Any] | None = None  # state_dict only, with arch:
    trusted: bool = False  # format module: allow unpickling, which runs code from the file
    # Whether the artifact takes images normalised by the spec's model.input mean/std (as the baseline's
    # network does) or the raw [0, 1] images, normalising inside itself.
    input: Literal["normalized", "raw"] = "normalized"

    @model_validator(mode="before")
    @classmethod
    def _path_alone(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value  # `artifact: models/qat.pt`

    @model_validator(mode="after")
    def _consistent(self) -> "ArtifactParams":
        suffix = Path(self.path).suffix.lower()
        if suffix in RUNTIME_SUFFIXES:
            raise ValueError(
                f"'{self.path}' is for {RUNTIME_SUFFIXES[suffix]}, which this release of robustgate cannot run yet; "
                f"give a PyTorch artifact (a state_dict, a pickled module, TorchScript or a torch.export program, .pt2), "
                f"an ONNX model (.onnx) or an ExecuTorch program (.pte)"
            )
        fmt = self.format or SUFFIX_FORMATS.get(suffix)
        if (self.arch is not None or self.kwargs is not None) and fmt not in (None, "state_dict"):
            raise ValueError(f"arch: and kwargs: describe a state_dict; a {fmt} file carries its own architecture")
        if self.kwargs is not None and self.arch is None:
            raise ValueError("kwargs: needs arch: (without arch:, the spec's model and its kwargs are used)")
        return self


def artifact_format(path: Path, given: str | None) -> str:
    """The artifact's format: as given, ``export`` for ``.pt2``, else told from the zip members torch wrote."""
    if given is not None:
        return given
    if path.suffix.lower() in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[path.suffix.lower()]
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return "state_dict"  # a legacy pickle stream: torch.load says what is wrong with it
    if any("/code/" in name for name in names) or any(name.endswith("/constants.pkl") for name in names):
        return "torchscript"
    if any(name.endswith("/serialized_exported_program.json") or "/models/" in name for name in names):
        return "export"
    return "state_dict"  # torch.save: a state_dict, or a pickled module (told apart when loaded)


class Artifact(CompressionStep):
    """A model loaded from a file; it replaces the chain up to here instead of compressing its parent."""

    Params = ArtifactParams
    source = True
    # Whether the artifact has autograd is known only once it is loaded (an int8 TorchScript model has none):
    # the pipeline asks the model itself. False here means "attack evaluation may not assume gradients".
    differentiable = False

    def apply(self, model: Classifier, params: ArtifactParams, ctx: StepContext) -> Classifier:
        path = self.path(params, ctx)
        if not path.is_file():
            raise CompressionError(
                f"artifact: '{params.path}' does not exist ({path})",
                hint="give the file's path relative to the spec file, or absolute",
            )
        fmt = artifact_format(path, params.format)
        ctx.progress(f"artifact: loading {fmt} '{params.path}'")
        return self._checked(model, self._classifier(model, self._load(path, fmt, model, params), params), params, ctx)

    def restore(self, parent: Classifier, params: ArtifactParams, state: dict[str, Any], ctx: StepContext) -> Classifier:
        return self.apply(parent, params, ctx)  # the file is the state (its digest is in the cache key)

    def state(self, model: Classifier) -> dict[str, Any]:
        return {}

    def external_inputs(self, params: ArtifactParams, ctx: StepContext | None = None) -> tuple[str, ...]:
        from robustgate.cache import versioned_file_digest

        return tuple(
            f"artifact:{path.name}:{versioned_file_digest(path) if path.is_file() else 'absent'}"
            for path in self.files(params, ctx)
        )

    def stored_bytes(self, params: ArtifactParams, ctx: StepContext) -> int | None:
        return sum(path.stat().st_size for path in self.files(params, ctx))

    def runs_in_runtime(self, params: ArtifactParams) -> bool:
        return self._runtime(params) is not None

    def missing_runtime(self, params: ArtifactParams, ctx: StepContext | None = None) -> str | None:
        from robustgate.runtimes import runtime_missing

        runtime = self._runtime(params)
        return runtime_missing(runtime) if runtime is not None else None

    @staticmethod
    def _runtime(params: ArtifactParams) -> str | None:
        return RUNTIME_FORMATS.get(params.format or SUFFIX_FORMATS.get(Path(params.path).suffix.lower(), ""))

    def files(self, params: ArtifactParams, ctx: StepContext | None) -> list[Path]:
        """The artifact's files: the one given, and for an ONNX model the external-data files beside it."""
        path = self.path(params, ctx)
        if path.is_file() and artifact_format(path, params.format) == "onnx" and self.missing_runtime(params) is None:
            from robustgate.runtimes.onnx import onnx_files

            return onnx_files(path)
        return [path]

    def is_differentiable(self, model: Classifier, ctx: StepContext) -> bool:
        # An artifact's gradient must reach its input: a PT2E int8 program carries one that rounding zeroes.
        from robustgate.attacks.protocol import gradient_reaches_input

        return gradient_reaches_input(model, ctx.example)

    def counts_size(self, model: Classifier, ctx: StepContext) -> bool:
        # A float graph shows torch's FLOP counter every op and names its weights; an int8 TorchScript or
        # exported graph keeps packed weights under other names and runs ops the counter does not know.
        return self.is_differentiable(model, ctx)

    @staticmethod
    def path(params: ArtifactParams, ctx: StepContext | None) -> Path:
        from robustgate.spec.paths import resolve_path

        return resolve_path(params.path, ctx.spec_dir if ctx is not None and ctx.spec_dir is not None else Path("."))

    # -- loading ----------------------------------------------------------------

    def _load(self, path: Path, fmt: str, parent: Classifier, params: ArtifactParams) -> nn.Module:
        import copy

        import torch

        if fmt in RUNTIME_FORMATS:
            return self._runtime_net(path, fmt, params)
        try:
            if fmt == "torchscript":
                return torch.jit.load(str(path), map_location="cpu").eval()
            if fmt == "export":
                return _exported(torch.export.load(str(path)).module())
        except Exception as err:  # torch raises many kinds for a file it cannot read
            raise CompressionError(
                f"artifact: cannot load '{params.path}' as {fmt}: {first_line(err)}",
                hint="check format: (state_dict, module, torchscript, export) against how the file was saved",
            ) from None
        if fmt == "module" or (fmt == "state_dict" and params.trusted):
            # Unpickled once: a whole module is the network; anything else is read as a state_dict below.
            loaded = self._unpickled(path, params)
            if isinstance(loaded, torch.nn.Module):
                return loaded.eval()
            if fmt == "module":
                raise CompressionError(
                    f"artifact: '{params.path}' holds a {type(loaded).__name__}, not a torch.nn.Module",
                    hint="use format: state_dict for a dict of tensors",
                )
        from robustgate.errors import ModelError
        from robustgate.models.architectures import build_network
        from robustgate.models.weights import load_checkpoint

        if params.arch is not None:
            net = build_network(params.arch, params.kwargs or {})
        else:
            net = copy.deepcopy(parent.net)  # the spec's architecture, as built for the baseline
        try:
            load_checkpoint(net, path, trusted=params.trusted, arch=params.arch or "the spec's model")
        except ModelError as err:  # its message names what does not fit; said as this step's
            raise CompressionError(f"artifact: {err.message}", hint=err.hint) from None
        return net.eval()

    def _runtime_net(self, path: Path, fmt: str, params: ArtifactParams) -> nn.Module:
        missing = self.missing_runtime(params)
        if missing is not None:
            raise CompressionError(f"artifact: '{params.path}' needs {missing}", hint="install the extra, or drop the variant")
        try:
            if fmt == "executorch":
                from robustgate.runtimes.executorch import ExecuTorchNet

                return ExecuTorchNet(path)
            from robustgate.runtimes.onnx import OnnxRuntimeNet

            return OnnxRuntimeNet(path)
        except CompressionError as err:
            raise CompressionError(f"artifact: {err.message}", hint=err.hint) from None

    @staticmethod
    def _unpickled(path: Path, params: ArtifactParams) -> object:
        import torch

        if not params.trusted:
            raise CompressionError(
                f"artifact: '{params.path}' is a pickled module, and unpickling it runs code from the file",
                hint="add trusted: true under artifact: if you trust the file, or save it as TorchScript or torch.export",
            )
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # torch raises many kinds for a damaged or foreign file; each becomes one message
            raise CompressionError(
                f"artifact: cannot read '{params.path}': {first_line(err)}",
                hint="check that the file was written by torch.save and copied whole",
            ) from None

    @staticmethod
    def _classifier(parent: Classifier, net: nn.Module, params: ArtifactParams) -> Classifier:
        from robustgate.models.classifier import Classifier, Normalize

        if params.input == "normalized":
            return parent.with_net(net).eval()
        channels = parent.normalize.mean.numel()
        return Classifier(Normalize((0.0,) * channels, (1.0,) * channels), net).eval()

    @staticmethod
    def _checked(parent: Classifier, model: Classifier, params: ArtifactParams, ctx: StepContext) -> Classifier:
        """The artifact after forward passes on the spec's input: it must give the baseline's logits' shape, and
        take any batch size (evaluation batches vary; the last one is short). The trial runs on a copy: torch.ao's
        x86 int8 kernels specialise to the first batch shape they run (pytorch/pytorch#84470), and latency times
        a model whose first use is its own."""
        import copy

        import torch

        trial = copy.deepcopy(model)
        try:
            with torch.no_grad():
                out, expected = trial(ctx.example), parent(ctx.example)
        except Exception as err:  # anything the artifact's own code raises
            raise CompressionError(
                f"artifact: '{params.path}' fails on a {list(ctx.example.shape)} input: {first_line(err)}",
                hint="the artifact must take the spec's model.input (size, channels); with input: raw it gets [0, 1] "
                "images, otherwise images normalised by model.input's mean and std",
            ) from None
        odd = torch.cat([ctx.example, ctx.example[:1]])  # another batch size than any example a team exports with
        try:
            with torch.no_grad():
                trial(odd)
        except Exception as err:
            raise CompressionError(
                f"artifact: '{params.path}' runs on a batch of {len(ctx.example)} but fails on a batch of {len(odd)}: "
                f"{first_line(err)}",
                hint="export it with a dynamic batch dimension: dynamic_shapes=({0: torch.export.Dim('batch')},) in "
                "torch.export.export(net, (x,), ...) or torch.onnx.export(net, (x,), path, ...); robustgate evaluates "
                "in batches of any size",
            ) from None
        if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
            shown = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise CompressionError(
                f"artifact: '{params.path}' returns {shown} on the spec's input, the baseline {list(expected.shape)}",
                hint="the artifact must return batch x classes logits for the spec's classes",
            )
        return model


def _exported_type() -> type:
    from torch import nn

    class Exported(nn.Module):
        """An exported program's module: its graph fixed train/eval mode at export and it refuses ``train()``,
        which the classifier's ``eval()`` calls on every child; so mode changes stop here."""

        def __init__(self, program: nn.Module) -> None:
            super().__init__()
            self.program = program

        def train(self, mode: bool = True) -> "Exported":
            self.training = mode
            return self

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.program(x)

        def twin(self, example):  # type: ignore[no-untyped-def]
            """A PT2E int8 program (quantize/dequantize ops around float ops, as convert_pt2e writes them) has no
            autograd through its quantize ops; its twin is robustgate's PT2E twin of that very graph."""
            from torchao.quantization.pt2e import allow_exported_model_train_eval

            from robustgate.compressors.int8.twin import NoTwin, pt2e_twin

            graph = getattr(self.program, "graph", None)
            if graph is None or not any("quantized_decomposed" in str(node.target) for node in graph.nodes):
                raise NoTwin("robustgate builds twins of torch.export programs quantized by PT2E (convert_pt2e) only")
            program = allow_exported_model_train_eval(self.program)
            return pt2e_twin(program, program)

    return Exported


def _exported(program: nn.Module) -> nn.Module:
    return _exported_type()(program)


compression_steps.register("artifact")(Artifact())

"""What a spec's model takes and gives: its example input, its device, its logits, and the datasets it fits.

Pure functions of the spec and a model, shared by building the baseline and by the model store, so a
model that does not answer its declared input with logits fails once, with the same message, wherever
it is first run.
"""

from __future__ import annotations

from typing import Any

import torch

from robustgate.data.imageset import ImageSet
from robustgate.errors import DataError, ModelError
from robustgate.models.classifier import Classifier
from robustgate.spec.model import Spec


def example_input(spec: Spec) -> torch.Tensor:
    """A batch of two blank images at the model's declared input geometry (two: batch norm needs a batch)."""
    return torch.zeros(2, spec.model.input.channels, *spec.model.input.size)


def spec_device(spec: Spec) -> torch.device:
    """The device the spec evaluates fp32 models on; refused when it is a CUDA device torch cannot see."""
    if spec.device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(
            f"the spec asks for device: {spec.device} but torch sees no CUDA device",
            hint="run on a machine with a GPU, or set device: cpu",
        )
    device = torch.device(spec.device)
    if device.type == "cuda":
        full_fp32_on_cuda()
    return device


def full_fp32_on_cuda() -> None:
    """Make CUDA compute fp32 models in fp32, the same way on every run (process-wide; set before any fp32 model
    meets the GPU). cuDNN's default on Ampere and later GPUs rounds convolution inputs to TF32 (a 10-bit mantissa):
    the gates would judge another model than the fp32 one they name. And its autotuner may choose another
    algorithm on another run (other sums, other bits), where a cached result promises the same numbers."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def count_outputs(model: Classifier, spec: Spec) -> int:
    """Logits per image of ``model`` on the spec's input; a ModelError when it does not give batch x classes logits."""
    arch, example = spec.model.arch, example_input(spec)
    try:
        with torch.no_grad():
            out = model.eval()(example)
    except Exception as err:  # any failure here means the arch does not accept the declared input
        raise ModelError(
            f"{arch} fails on a {list(example.shape[1:])} input: {type(err).__name__}: {err}",
            hint="check model.input (size, and one mean/std value per channel) against the architecture",
        ) from None
    if not isinstance(out, torch.Tensor):
        raise ModelError(
            f"{arch} returns {describe_output(out)}, not a tensor of logits",
            hint="make the model's forward return the batch x classes logits alone: wrap it in a module whose "
            "forward returns e.g. `self.net(x)[0]` or `self.net(x)['logits']`, and give that wrapper as arch:",
        )
    if out.dim() != 2:
        raise ModelError(f"{arch} returns shape {list(out.shape)}, not batch x classes logits")
    return int(out.shape[1])


def check_fits(name: str, data: ImageSet, outputs: int, trained_classes: tuple[str, ...] | None) -> None:
    """Refuse dataset ``name`` for a model with ``outputs`` logits trained on ``trained_classes`` (None: not
    trained here) unless its classes are as many and, after training, the same ones in the same order."""
    if len(data.classes) != outputs:
        raise DataError(
            f"dataset '{name}' has {len(data.classes)} classes but the model outputs {outputs} logits",
            hint=f"set model kwargs num_classes: {len(data.classes)}, or evaluate on a dataset with {outputs} classes",
        )
    if trained_classes is not None and data.classes != trained_classes:
        # Label i must mean the same class as in training, or accuracies are silently wrong.
        raise DataError(
            f"dataset '{name}' has classes {_preview(data.classes)} but the model was trained on "
            f"{_preview(trained_classes)}",
            hint="name the class folders as in the training set (labels follow the sorted folder names)",
        )


def describe_output(out: Any) -> str:
    """``a tuple of 2 (Tensor [2, 10], Tensor [2, 10])``, ``a dict with keys 'logits', 'features'``: what a forward gave."""
    def one(value: Any) -> str:
        return f"Tensor {list(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__

    if isinstance(out, dict):
        return f"a {type(out).__name__} with keys {', '.join(repr(k) for k in list(out)[:6])}"
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)} ({', '.join(one(v) for v in out[:4])}{', ...' if len(out) > 4 else ''})"
    return f"a {type(out).__name__}"


def _preview(classes: tuple[str, ...]) -> str:
    return "[" + ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "") + "]"

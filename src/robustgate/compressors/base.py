"""What a compression step is: parameters, how to apply it, and how to rebuild it from a cached state.

Steps never evaluate; they only turn a model into a smaller one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from robustgate.errors import CompressionError
from robustgate.models.state import load_state
from robustgate.registry import Registry
from robustgate.spec.fields import Params

if TYPE_CHECKING:  # steps are looked up when specs are read; torch is imported when they run
    import torch

    from robustgate.data.imageset import ImageSet
    from robustgate.models.classifier import Classifier


def _cpu() -> torch.device:
    import torch

    return torch.device("cpu")


@dataclass(frozen=True)
class StepContext:
    """What a step may use besides the model: data by name (calibration, fine-tuning) and run settings.

    Steps take and return CPU models (that is what the cache stores); ``device`` is where training
    inside a step (fine-tuning, distillation) runs. Quantization always runs on the CPU."""

    dataset: Callable[[str], ImageSet]
    default_data: str | None  # the baseline's training set, used when a step names none
    example: torch.Tensor  # one input batch of the model's geometry, for tracing
    seed: int
    progress: Callable[[str], None]
    device: torch.device = field(default_factory=_cpu)
    spec_dir: Path | None = None  # where the spec file is: paths a step reads (an artifact) are relative to it


class CompressionStep:
    """One registered kind of compression (``ptq``, later ``prune``, ``distill``)."""

    Params: ClassVar[type[Params]]
    preserves_macs: ClassVar[bool] = False  # quantization keeps the arithmetic, only its precision changes
    differentiable: ClassVar[bool] = True  # False: no autograd through the result (attacks must not trust gradients)
    source: ClassVar[bool] = False  # True: the step replaces the model (an artifact) and must come first

    def apply(self, model: Classifier, params: Any, ctx: StepContext) -> Classifier:
        raise NotImplementedError

    def state(self, model: Classifier) -> dict[str, Any]:
        """What to cache so :meth:`restore` can rebuild the result without re-running the step."""
        return {"state_dict": model.state_dict()}

    def restore(self, parent: Classifier, params: Any, state: dict[str, Any], ctx: StepContext) -> Classifier:
        raise NotImplementedError

    def external_inputs(self, params: Any, ctx: StepContext | None = None) -> tuple[str, ...]:
        """Digests of what the step reads besides its params and datasets (a weights file), for its cache key."""
        return ()

    def stored_bytes(self, params: Any, ctx: StepContext) -> int | None:
        """The result's size as shipped, where it is a file (an artifact's bytes on disk); None: its serialized state."""
        return None

    def runs_in_runtime(self, params: Any) -> bool:
        """Whether the result runs in an edge runtime instead of PyTorch (no later step can compress it)."""
        return False

    def missing_runtime(self, params: Any, ctx: StepContext | None = None) -> str | None:
        """Why the step cannot run on this machine because an optional runtime is not installed (saying which
        extra installs it), or None. The variant's items skip with that reason instead of failing."""
        return None

    def counts_size(self, model: Classifier, ctx: StepContext) -> bool:
        """Whether params and MACs can be counted on the result (torch's FLOP counter and the state's weight
        names see every layer); False leaves them unknown, and a size gate on them cannot judge. A network run
        by an edge runtime has no torch parameters to count."""
        return not getattr(model.net, "runs_in_runtime", False)

    def is_differentiable(self, model: Classifier, ctx: StepContext) -> bool:
        """Whether the result has autograd: robustgate's int8 networks and edge runtimes have none."""
        from robustgate.compressors.int8.engine import Int8Net

        return not isinstance(model.net, Int8Net) and not getattr(model.net, "runs_in_runtime", False)


def net_state(model: Classifier) -> dict[str, Any]:
    """A step's cacheable state: the network's tensors only (loadable with ``weights_only=True``)."""
    return {"state_dict": {name: value.detach().cpu().clone() for name, value in model.net.state_dict().items()}}


def load_into_rebuilt(model: Classifier, state: dict[str, Any], step: str) -> Classifier:
    """Load a cached state into a rebuilt architecture, refusing any tensor whose shape differs."""
    cached, rebuilt = state["state_dict"], model.net.state_dict()
    for name in sorted(set(cached) | set(rebuilt)):
        have = list(cached[name].shape) if name in cached else "missing"
        want = list(rebuilt[name].shape) if name in rebuilt else "missing"
        if have != want:
            raise CompressionError(
                f"{step}: the cached model does not fit the structure rebuilt now: "
                f"'{name}' is {have} in the cache but {want} rebuilt",
                hint="the model's code or the Torch-Pruning version changed since the entry was cached; "
                "delete the cache folder to build it afresh",
            )
    load_state(model.net, cached)
    return model.eval()


compression_steps: Registry[CompressionStep] = Registry("compression step", base=CompressionStep)

"""What a compression step is: parameters, how to apply it, and how to rebuild it from a cached state.

Steps never evaluate; they only turn a model into a smaller one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from robustgate.data.imageset import ImageSet
from robustgate.models.classifier import Classifier
from robustgate.registry import Registry
from robustgate.spec.fields import Params


@dataclass(frozen=True)
class StepContext:
    """What a step may use besides the model: data by name (calibration, fine-tuning) and run settings."""

    dataset: Callable[[str], ImageSet]
    default_data: str | None  # the baseline's training set, used when a step names none
    example: torch.Tensor  # one input batch of the model's geometry, for tracing
    seed: int
    progress: Callable[[str], None]


class CompressionStep:
    """One registered kind of compression (``ptq``, later ``prune``, ``distill``)."""

    Params: ClassVar[type[Params]]
    preserves_macs: ClassVar[bool] = False  # quantization keeps the arithmetic, only its precision changes
    differentiable: ClassVar[bool] = True  # False: no autograd through the result (attacks must not trust gradients)

    def apply(self, model: Classifier, params: Any, ctx: StepContext) -> Classifier:
        raise NotImplementedError

    def state(self, model: Classifier) -> dict[str, Any]:
        """What to cache so :meth:`restore` can rebuild the result without re-running the step."""
        return {"state_dict": model.state_dict()}

    def restore(self, parent: Classifier, params: Any, state: dict[str, Any], ctx: StepContext) -> Classifier:
        raise NotImplementedError


compression_steps: Registry[CompressionStep] = Registry("compression step", base=CompressionStep)

"""Chaining a variant's steps in the order written, each cached on its own.

Two variants that share a prefix of steps (``prune`` then ``ptq`` vs ``prune``)
share that prefix's work: each step's key is its parent's key plus the step (and
the provenance of a compression: robustgate's compressor code, libraries, CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from robustgate.cache import ArtifactCache
from robustgate.compressors.base import CompressionStep, StepContext, compression_steps
from robustgate.compressors.size import ModelSize, count_macs, count_params, serialized_bytes
from robustgate.models.classifier import Classifier
from robustgate.provenance import ArtifactKey, artifact_key, environment
from robustgate.spec.fields import dataset_refs
from robustgate.spec.model import Step

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class BuiltModel:
    """A model with the key that identifies it in the cache and its size."""

    model: Classifier
    key: ArtifactKey | str  # a str only where a test stands in for an upstream model
    size: ModelSize
    differentiable: bool


def measure(
    model: Classifier, example: torch.Tensor, macs: int | None = None, *, stored: int | None = None, counted: bool = True,
) -> ModelSize:
    """``stored``: bytes of the file the model ships as (else its serialized state); ``counted`` False: params and
    MACs are not countable on this model (a foreign int8 graph), so they stay unknown rather than wrong."""
    return ModelSize(
        params=count_params(model.net) if counted else None,
        macs=(macs if macs is not None else count_macs(model, example)) if counted else None,
        bytes=stored if stored is not None else serialized_bytes(model.net),
    )


def compress(
    parent: BuiltModel,
    steps: tuple[Step, ...],
    ctx: StepContext,
    cache: ArtifactCache,
    memo: dict[str, BuiltModel],
    fingerprint: Callable[[str], str],
) -> BuiltModel:
    """Apply ``steps`` to ``parent`` in order; ``memo`` holds this session's built prefixes by key."""
    current = parent
    for step in steps:
        key = step_key(current.key, step, ctx, fingerprint)
        if key.digest not in memo:
            memo[key.digest] = _run_step(current, step, compression_steps.get(step.kind), key, ctx, cache)
        current = memo[key.digest]
    return current


def step_key(
    parent: ArtifactKey | str, step: Step, ctx: StepContext, fingerprint: Callable[[str], str],
) -> ArtifactKey:
    """The cache key of ``step`` applied to the model keyed ``parent``: the step, the data it reads, the seed,
    what it reads besides (a weights file) and the compressors' provenance. Nothing is built."""
    step_impl = compression_steps.get(step.kind)
    data = sorted({ref for _, ref in dataset_refs(step.params)} | ({ctx.default_data} if ctx.default_data else set()))
    return artifact_key(
        ("step", step.kind, step.params, {d: fingerprint(d) for d in data}, ctx.seed,
         *step_impl.external_inputs(step.params, ctx)),
        environment("steps"),
        {"model": parent},
    )


def _run_step(
    parent: BuiltModel, step: Step, step_impl: CompressionStep, key: ArtifactKey, ctx: StepContext, cache: ArtifactCache
) -> BuiltModel:
    fresh: list[Classifier] = []

    def create() -> dict[str, Any]:
        ctx.progress(f"compressing: {step.kind}")
        model = step_impl.apply(parent.model, step.params, ctx)
        fresh.append(model)
        return step_impl.state(model)

    state = cache.get_or_create("steps", key, create)
    model = fresh[0] if fresh else step_impl.restore(parent.model, step.params, state, ctx)
    macs = parent.size.macs if step_impl.preserves_macs else None
    counted = step_impl.counts_size(model, ctx)
    return BuiltModel(
        model=model.eval(),
        key=key,
        size=measure(model, ctx.example, macs, stored=step_impl.stored_bytes(step.params, ctx), counted=counted),
        # From the result, not the chain: a student distilled from an int8 teacher is fp32 again.
        differentiable=step_impl.is_differentiable(model, ctx),
    )

"""One spec's models: the baseline and each variant, built once (through the cache) and kept for the session."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import torch

from robustgate.cache import ArtifactCache
from robustgate.compressors.base import StepContext, compression_steps
from robustgate.compressors.pipeline import BuiltModel, compress, step_key
from robustgate.data.imageset import ImageSet
from robustgate.data.resolve import SpecDatasets
from robustgate.errors import RobustgateError
from robustgate.evaluation.baseline import Baseline, baseline_key, build_baseline
from robustgate.evaluation import model_io
from robustgate.models.classifier import Classifier
from robustgate.phases import PhaseClock
from robustgate.provenance import ArtifactKey
from robustgate.spec.model import BASELINE, Spec
from robustgate.threads import build_threads


class ModelStore:
    """Builds the baseline and the variants of one spec on demand, on the CPU, and places copies for evaluation."""

    def __init__(
        self, spec: Spec, cache: ArtifactCache, datasets: SpecDatasets, clock: PhaseClock,
        progress: Callable[[str], None],
    ) -> None:
        self.spec, self.cache, self.datasets, self.clock, self.progress = spec, cache, datasets, clock, progress
        self._baseline: Baseline | None = None
        self._built: dict[str, BuiltModel] = {}  # the compression pipeline's memo of built prefixes, by key
        self._failed: dict[str, RobustgateError] = {}  # a model that failed to build fails every item fast
        self._on_device: dict[str, Classifier] = {}  # evaluation copies of fp32 models on spec.device
        self._channels_last: dict[str, Classifier | None] = {}  # prediction copies (None: the model refuses it)
        self._outputs: dict[int, int] = {}  # logits per image, by model identity
        self._baseline_key: tuple[ArtifactKey, bool] | None = None

    def unavailable(self, model: str) -> str | None:
        """Why ``model`` cannot be built here: a runtime its variant needs is not installed (None: it can)."""
        from robustgate.plan import missing_runtime

        return missing_runtime(self.spec, model)

    def model(self, variant: str) -> BuiltModel:
        """The baseline, or a variant built by its compression pipeline (on the CPU)."""
        if variant == BASELINE:
            return self.baseline()
        if variant not in self.spec.variants:
            raise RobustgateError(f"unknown variant '{variant}'")
        if variant in self._failed:
            raise self._failed[variant]
        entry = self.spec.variants[variant]
        try:
            baseline = self.baseline()
            with self.clock.phase("compression"), build_threads():
                return compress(baseline, entry.steps, self._step_context(), self.cache, self._built, self._fingerprint)
        except RobustgateError as err:
            self._failed[variant] = err.at(self.spec.where(entry.line))
            raise self._failed[variant] from None

    def baseline(self) -> BuiltModel:
        if BASELINE in self._failed:
            raise self._failed[BASELINE]
        if self._baseline is None:
            where = self.spec.where(self.spec.lines.line(("model",)))
            try:
                self._baseline = self._build_baseline()
            except RobustgateError as err:
                self._failed[BASELINE] = err.at(where)
                raise self._failed[BASELINE] from None
        return self._baseline.built

    def size_metrics(self, variant: str) -> dict[str, float | int]:
        """Params, MACs and serialized bytes of a model, and their ratios to the baseline's."""
        size, base = self.model(variant).size, self.baseline().size
        ratios: dict[str, float] = {}
        if size.params is not None and base.params:
            ratios["params_ratio"] = size.params / base.params
        if size.macs is not None and base.macs is not None:
            ratios["macs_ratio"] = size.macs / base.macs if base.macs else 1.0
        return {
            **size.as_dict(),
            **ratios,
            "size_ratio": size.bytes / base.bytes,
            **{f"baseline_{name}": value for name, value in base.as_dict().items()},  # what each ratio is of
        }

    @property
    def device(self) -> torch.device:
        return model_io.spec_device(self.spec)

    def evaluation_copy(self, variant: str, built: BuiltModel) -> tuple[Classifier, torch.device]:
        """The model to evaluate and where: fp32 models on spec.device (a copy, so the CPU model that
        compressors read stays put), int8 models on the CPU, where torch.ao's kernels run."""
        if not built.differentiable or self.device.type == "cpu":
            return built.model, torch.device("cpu")
        if variant not in self._on_device:
            self._on_device[variant] = copy.deepcopy(built.model).to(self.device).eval()
        return self._on_device[variant], self.device

    def prediction_copy(self, variant: str, built: BuiltModel) -> tuple[Classifier, torch.device, bool]:
        """The model to predict clean logits with, where, and whether it takes channels_last batches.

        An fp32 model on the CPU predicts from a copy in channels_last memory: oneDNN's convolutions run 1.7-1.9x
        faster so (benchmarks/bench_channels_last.py), at the cost of other bits in the last place of the logits
        (deterministic still). A copy, so attacks and compressors keep the model as it is. A model whose forward
        refuses channels_last tensors (``.view`` on a conv output) predicts as it is."""
        model, device = self.evaluation_copy(variant, built)
        if not built.differentiable or device.type != "cpu":
            return model, device, False
        if variant not in self._channels_last:
            self._channels_last[variant] = _in_channels_last(model, self.example())
        faster = self._channels_last[variant]
        return (model, device, False) if faster is None else (faster, device, True)

    def example(self) -> torch.Tensor:
        return model_io.example_input(self.spec)

    def num_outputs(self, model: Classifier) -> int:
        if id(model) not in self._outputs:
            self._outputs[id(model)] = model_io.count_outputs(model, self.spec)
        return self._outputs[id(model)]

    def check_fits(self, name: str, data: ImageSet, model: Classifier) -> None:
        """Refuse dataset ``name`` for ``model`` unless it has the model's classes (see :func:`model_io.check_fits`)."""
        trained = self._baseline.trained_classes if self._baseline is not None else None
        model_io.check_fits(name, data, self.num_outputs(model), trained)

    def differentiable_parent(self, variant: str) -> BuiltModel:
        """The variant before its first non-differentiable step: the fp32 torch model it was quantized or exported
        from (for an artifact, the spec's baseline)."""
        steps = self.spec.variants[variant].steps
        first = min(i for i, step in enumerate(steps) if not compression_steps.get(step.kind).differentiable)
        return compress(self.baseline(), steps[:first], self._step_context(), self.cache, self._built, self._fingerprint)

    def is_transfer_parent(self, variant: str) -> bool:
        """Whether ``variant`` (or the baseline) is the differentiable parent of a variant of the spec: the model
        that variant's transfer leg attacks (:meth:`differentiable_parent`), read off the steps, nothing built."""
        own = () if variant == BASELINE else self.spec.variants[variant].steps
        for other in self.spec.variants.values():
            kinds = [compression_steps.get(step.kind) for step in other.steps]
            first = next((i for i, kind in enumerate(kinds) if not kind.differentiable), None)
            if first is not None and _same_steps(other.steps[:first], own):
                return True
        return False

    def transfer_parent(self, model: str) -> str | None:
        """The model (baseline or variant, by name) that is ``model``'s differentiable parent, read off the steps:
        the one whose steps are ``model``'s before its first non-differentiable step. None for a model with
        autograd, or when no model of the spec has exactly those steps."""
        if model == BASELINE:
            return None
        steps = self.spec.variants[model].steps
        first = next((i for i, step in enumerate(steps) if not compression_steps.get(step.kind).differentiable), None)
        if first is None:
            return None
        named = {BASELINE: (), **{name: variant.steps for name, variant in self.spec.variants.items()}}
        return next((name for name, own in named.items() if _same_steps(steps[:first], own)), None)

    def stored_steps(self, model: str) -> tuple[bool, ...]:
        """What building ``model`` would find in the cache: for the baseline trained here, whether its weights are
        stored; for a variant, whether each step's result is. Keys only: nothing is trained, compressed or loaded
        (the training set is read, for its fingerprint). Empty for a baseline read as it is."""
        if self._baseline_key is None:
            self._baseline_key = baseline_key(self.spec, self.datasets)
        key, trained = self._baseline_key
        if model == BASELINE:
            return (self.cache.holds("weights", key),) if trained else ()
        ctx, found = self._step_context(), []
        for step in self.spec.variants[model].steps:
            key = step_key(key, step, ctx, self._fingerprint)
            found.append(self.cache.holds("steps", key))
        return tuple(found)

    def restored(self, variant: str) -> tuple[Classifier, float]:
        """A fresh copy of ``variant`` restored from the cache, and the seconds that took (its load time).

        Latency needs a fresh one: torch.ao's x86 int8 kernels specialise to the first batch shape
        they run (pytorch/pytorch#84470), and this session's copy already ran evaluation batches.
        Without a cache (--robustgate-no-cache) it is a deep copy of the built model instead."""
        built = self.model(variant)  # built (and stored) first, so the restore below only reads
        start = time.perf_counter()
        if self.cache.root is None:
            model = copy.deepcopy(built.model)
        else:
            fresh = self._build_baseline().built
            if variant != BASELINE:
                steps = self.spec.variants[variant].steps
                fresh = compress(fresh, steps, self._step_context(), self.cache, {}, self._fingerprint)
            model = fresh.model
        return model.eval(), time.perf_counter() - start

    def _build_baseline(self) -> Baseline:
        return build_baseline(self.spec, self.cache, self.datasets, self.clock, self.progress)

    def _step_context(self) -> StepContext:
        train = self.spec.model.train
        return StepContext(
            dataset=self.datasets.__getitem__,
            default_data=train.on if train else None,
            example=self.example(),
            seed=self.spec.seed,
            progress=self.progress,
            device=self.device,
            spec_dir=self.spec.directory,
        )

    def _fingerprint(self, dataset: str) -> str:
        return self.datasets[dataset].fingerprint()


def _in_channels_last(model: Classifier, example: torch.Tensor) -> Classifier | None:
    """A copy of ``model`` in channels_last memory, or None when its forward fails on a channels_last batch."""
    if example.dim() != 4:
        return None
    copied = copy.deepcopy(model).to(memory_format=torch.channels_last).eval()
    try:
        with torch.inference_mode():
            copied(example.contiguous(memory_format=torch.channels_last))
    except RuntimeError:  # e.g. "view size is not compatible with input tensor's size and stride"
        return None
    return copied


def _same_steps(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Whether two step lists compress alike (same kinds and parameters, hence the same cache key)."""
    return len(a) == len(b) and all(x.kind == y.kind and x.params == y.params for x, y in zip(a, b))

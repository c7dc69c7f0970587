"""Before a run starts: what each model will cost to build and evaluate on this machine when nothing is cached.

A run on a cold cache can take minutes to hours; the progress bars say what is left of a phase once it runs,
this says before the first item what the whole run holds. It counts the work a cold run does for each model:

- training and fine-tuning: epochs x training images (the baseline's ``train:``, a pruning step's
  ``finetune:``, a distillation's student steps plus the teacher's forward passes, PTQ's calibration images);
- attacks: images x strengths x steps x restarts, per leg (an int8 model's twin leg, its transfer leg unless
  its fp32 parent is attacked in the same contract and its images are reused, its gradient-free queries), and
  the masking diagnostics at about the attack's own cost;
- predictions: forward passes over the datasets its contracts read, corrupted sets included, and the corrupting
  of each set once.

and prices it at rates measured now, here: one timed training step, attack step and forward pass of the spec's
architecture at its input size (random weights: the arithmetic is the same), and one small batch per corruption.
Other networks (a pruned one, a distillation student) are priced by their multiply-accumulates against the
baseline's. Only what the cache does not hold is counted: a model whose training or compression entry is
stored counts as built and evaluated. It is an estimate, and it errs long: attacks are counted at their full
budget (Square stops at an image's first fooling query, the masking checks reuse the attack's iterates), and a
corruption is timed on 8 images with its set-up; ``benchmarks/bench_quickstart.py`` and
``bench_office31_cpu_profile.py`` print it beside the measured times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from robustgate.attacks.base import attack_kinds
from robustgate.compressors.base import compression_steps
from robustgate.compressors.size import count_macs
from robustgate.data.imageset import ImageSet
from robustgate.data.resolve import SpecDatasets
from robustgate.evaluation.model_io import spec_device
from robustgate.evaluation.spec_evaluation import SpecEvaluation
from robustgate.models.architectures import build_network
from robustgate.models.classifier import Classifier, Normalize
from robustgate.spec.fields import dataset_refs
from robustgate.spec.model import BASELINE, Contract, Spec, Step
from robustgate.threads import build_threads

ANNOUNCED = 60.0  # seconds: a model that costs less cold is not announced
_MAX_RATE_BATCH = 64  # images per timed pass at most; the training batch size below that (a small batch prices
# an image several times higher than the run's batches at 32 px)
_INT8_FORWARD = 0.5  # an int8 forward pass against fp32's (x86 int8 kernels; benchmarks/bench_int8_latency.py)
_TWIN = 2.0  # a twin leg's step against an fp32 step: the int8 model runs in lockstep with the fake-quant twin


@dataclass(frozen=True)
class Rates:
    """Seconds per image on this machine for the spec's architecture at its input size."""

    forward: float  # a prediction
    train: float  # a training step: forward, backward, optimizer
    attack: float  # an attack step: forward and backward to the input
    macs: int  # the network's multiply-accumulates per image, which other networks are priced against


@dataclass
class ModelCost:
    """One model's estimated cold cost, by phase (seconds)."""

    spec: str
    model: str
    phases: dict[str, float] = field(default_factory=dict)

    def add(self, phase: str, seconds: float) -> None:
        self.phases[phase] = self.phases.get(phase, 0.0) + seconds

    @property
    def seconds(self) -> float:
        return sum(self.phases.values())

    def line(self) -> str:
        parts = ", ".join(f"{phase} {duration(seconds)}" for phase, seconds in
                          sorted(self.phases.items(), key=lambda kv: -kv[1]) if seconds >= 1)
        return f"{self.spec} {self.model}: about {duration(self.seconds)} ({parts})"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def measure_rates(spec: Spec) -> Rates:
    """Time one training step, attack step and forward pass of the spec's architecture (fresh random weights) on
    a batch of the training's size (at most 64) on the spec's device, each after a warm-up; training on the build
    threads, as the run trains."""
    params, device = spec.model, spec_device(spec)
    batch = min(_MAX_RATE_BATCH, params.train.batch_size if params.train else 32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        net = build_network(params.arch, params.kwargs)
        model = Classifier(Normalize(params.input.mean, params.input.std), net).eval()
        images = torch.rand(batch, params.input.channels, *params.input.size)
        macs = count_macs(model, images)
        model, images = model.to(device), images.to(device)
        with torch.no_grad():
            outputs = model(images[:2]).shape[1]
        labels = torch.randint(0, outputs, (batch,)).to(device)

        def forward() -> None:
            with torch.inference_mode():
                model(images)

        def attack_step() -> None:  # the gradient to the input only, as the attacks take it
            x = images.clone().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(x), labels), x)

        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-9)

        def train_step() -> None:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()

        rates = {"forward": _per_image(forward, batch, device), "attack": _per_image(attack_step, batch, device)}
        model.train()
        with build_threads():
            rates["train"] = _per_image(train_step, batch, device)
    return Rates(macs=macs, **rates)


def _per_image(step: Callable[[], None], batch: int, device: torch.device) -> float:
    def run() -> None:
        step()
        if device.type == "cuda":  # kernels run asynchronously: wait for them
            torch.cuda.synchronize(device)

    run()  # a warm-up: oneDNN picks its kernels on the first call
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / batch


def corruption_rates() -> Callable[[str, ImageSet], float]:
    """Seconds per image of each corruption at a set's geometry, timed on a few of its images when first asked
    (severity 3; one call, its set-up included, so it errs long)."""
    from robustgate.data.corruptions import corrupt

    memo: dict[tuple[str, tuple[int, ...]], float] = {}

    def per_image(name: str, data: ImageSet) -> float:
        key = (name, tuple(data.images.shape[1:]))
        if key not in memo:
            few = data.subset(torch.arange(min(8, len(data))))
            start = time.perf_counter()
            corrupt(few, name, 3, 0)
            memo[key] = (time.perf_counter() - start) / len(few)
        return memo[key]

    return per_image


def estimate(
    evaluation: SpecEvaluation, label: str, pairs: Iterable[tuple[str, Contract]], rates: Callable[[], Rates],
    corrupting: Callable[[str, ImageSet], float],
) -> list[ModelCost]:
    """The cold cost of each model of ``pairs`` (model, contract: the items selected) that the cache lacks.

    ``rates`` measures the spec's rates when first needed (nothing is timed for a warm spec); ``corrupting`` gives
    the seconds per image of one corruption at this geometry."""
    spec, models, datasets = evaluation.spec, evaluation.models, evaluation.datasets
    by_model: dict[str, list[Contract]] = {}
    for model, contract in pairs:
        by_model.setdefault(model, []).append(contract)
    stored = {model: models.stored_steps(model) for model in by_model}
    cold = {model: not all(found) for model, found in stored.items() if found}
    # A baseline read as it is (pretrained, a weights file) has no entry of its own: it is cold on a first run,
    # when the spec's models that do have entries have none stored.
    first_run = bool(cold) and all(not any(stored[model]) for model in cold)
    cold.update({model: first_run for model, found in stored.items() if not found})
    cold_models = [model for model in by_model if cold[model]]
    if not cold_models:
        return []
    measured = rates()
    corrupted: set[tuple[str, str, int]] = set()  # sets made once for every model
    # (model, contract) attacks of cold fp32 models: an int8 variant's transfer leg reuses its parent's images
    attacked = {(m, c.index) for m in cold_models if not _int8(spec, m) for c in by_model[m] if c.kind == "attack"}
    costs = []
    for model in cold_models:
        cost = ModelCost(label, model)
        scale = _build(cost, spec, model, stored[model], measured, datasets)
        work = _Work(spec, model, scale, measured, datasets, _int8(spec, model))
        for contract in by_model[model]:
            parent = models.transfer_parent(model)
            work.evaluate(cost, contract, (parent, contract.index) in attacked, corrupted, corrupting)
        costs.append(cost)
    return costs


def _build(
    cost: ModelCost, spec: Spec, model: str, stored: tuple[bool, ...], rates: Rates, datasets: SpecDatasets,
) -> float:
    """Add the training and compression ``model`` needs; returns its cost per image against the baseline's."""
    scale = 1.0
    if model == BASELINE:
        train = spec.model.train
        if train is not None and not all(stored):
            images = len(datasets[train.on])
            cost.add("training", train.epochs * images * rates.train)
        return scale
    steps: tuple[Step, ...] = spec.variants[model].steps
    for step, found in zip(steps, stored):
        params: Any = step.params  # the step kind's own Params
        if step.kind == "prune":
            after = scale * (1 - params.ratio) ** 2  # each layer keeps (1 - ratio) of its channels
            tune = params.finetune
            if tune is not None and not found:
                images = len(datasets[tune.on])
                cost.add("compression", tune.epochs * images * rates.train * after)
            scale = after
        elif step.kind == "distill":
            student = _student_scale(params.student, spec, rates)
            if not found:
                name = params.on or (spec.model.train.on if spec.model.train else None)
                images = len(datasets[name]) if name else 0
                per_image = rates.train * student + rates.forward * scale
                cost.add("compression", params.epochs * images * per_image)
            scale = student
        elif not compression_steps.get(step.kind).differentiable:
            if not found and step.kind == "ptq":
                samples = params.calibrate.samples if params.calibrate is not None else 256
                cost.add("compression", samples * rates.forward * scale)
            scale *= _INT8_FORWARD
    return scale


def _student_scale(student: Any, spec: Spec, rates: Rates) -> float:
    """A distillation student's cost per image against the baseline's, by multiply-accumulates."""
    net = build_network(student.arch, dict(student.kwargs))
    model = Classifier(Normalize(spec.model.input.mean, spec.model.input.std), net).eval()
    example = torch.zeros(1, spec.model.input.channels, *spec.model.input.size)
    return count_macs(model, example) * student.width ** 2 / max(rates.macs, 1)


@dataclass
class _Work:
    """One cold model's evaluation work, contract by contract."""

    spec: Spec
    model: str
    scale: float  # its cost per image against the baseline's
    rates: Rates
    datasets: SpecDatasets
    int8: bool
    predicted: set[str] = field(default_factory=set)  # datasets it predicts on (once, whatever the contracts)

    def evaluate(
        self, cost: ModelCost, contract: Contract, parent_attacked: bool, corrupted: set[tuple[str, str, int]],
        corrupting: Callable[[str, ImageSet], float],
    ) -> None:
        """Add what ``contract`` costs on the model: its attacks, its corrupted sets, its predictions."""
        params: Any = contract.params  # the contract kind's own Params
        if contract.kind == "attack":
            cost.add("attacks", self._attack(params, parent_attacked))
        elif contract.kind == "corruptions":
            data = self.datasets[params.on]
            images = params.samples or len(data)
            sets = [(params.on, name, severity) for name in params.names for severity in params.severities]
            cost.add("prediction", len(sets) * images * self.rates.forward * self.scale)
            new = [one for one in sets if one not in corrupted]  # a set is made once for every model
            corrupted.update(new)
            if new:
                seconds = sum(corrupting(name, data) * images for _, name, _ in new)
                cost.add("corruption", seconds)
        else:
            names = {name for _, name in dataset_refs(params)} - self.predicted
            self.predicted |= names
            images = sum(len(self.datasets[name]) for name in names)
            cost.add("prediction", images * self.rates.forward * self.scale)

    def _attack(self, params: Any, parent_attacked: bool) -> float:
        images = params.samples or len(self.datasets[params.on])
        strengths = len(_listed(params.eps if params.eps is not None else params.amount))
        kind = attack_kinds.get(params.kind)
        steps = params.steps or kind.default_steps or 1
        runs = images * strengths * params.restarts
        forward = self.rates.forward * self.scale
        fp32_step = self.rates.attack * (self.scale / _INT8_FORWARD if self.int8 else self.scale)
        if not kind.needs_gradients:
            seconds = runs * steps * forward
        elif not self.int8:
            seconds = runs * steps * fp32_step
        else:  # twin leg, gradient-free leg, and the transfer leg unless the parent's attack is reused
            seconds = runs * steps * fp32_step * _TWIN + images * strengths * params.queries * forward
            if not parent_attacked:
                seconds += runs * steps * fp32_step
        if params.diagnostics:  # the masking checks: about the attack's own cost (checks/attack.py)
            seconds *= 2
        return seconds


def _int8(spec: Spec, model: str) -> bool:
    """Whether ``model`` has no autograd (a quantized or runtime step): attacked by the int8 protocol."""
    return model != BASELINE and any(not compression_steps.get(step.kind).differentiable
                                     for step in spec.variants[model].steps)


def _listed(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else [value]

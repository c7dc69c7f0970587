"""One spec's working state in a session: its datasets, baseline, variants and predictions.

Everything expensive goes through the content-addressed cache, and everything
built is kept in memory for the rest of the session, so N contracts on one
variant build it once.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from robustgate.attacks.base import AttackSettings, attack_kinds
from robustgate.attacks.diagnostics import masking_findings
from robustgate.attacks.protocol import Policy, RobustResult, fake_quant_twin, robust_correct
from robustgate.attacks.strength import format_strength
from robustgate.budget import count_images
from robustgate.cache import ArtifactCache, file_digest
from robustgate.checkpoints import is_pretrained
from robustgate.models.pretrained import checkpoint_path, load_pretrained, resolve
from robustgate.phases import PhaseClock
from robustgate.threads import build_threads
from robustgate.compressors.base import StepContext, compression_steps
from robustgate.compressors.int8.twin import NoTwin
from robustgate.compressors.pipeline import BuiltModel, compress, measure
from robustgate.data.corruptions import corrupt
from robustgate.data.imageset import ImageSet
from robustgate.data.overlap import FittedImages
from robustgate.data.resolve import SpecDatasets
from robustgate.data.splits import stratified_sample
from robustgate.errors import DataError, ModelError, RobustgateError
from robustgate.inference import predict_logits
from robustgate.latency.machine import describe
from robustgate.latency.measure import (
    LatencyResult, Plan, RoundRunner, loop_runner, peak_memory_mb, queries_needed, query_of, time_queries, torch_threads,
)
from robustgate.models.architectures import build_network, model_code, structure_digest
from robustgate.models.classifier import Classifier, Normalize
from robustgate.models.state import load_state
from robustgate.models.train import train_classifier
from robustgate.models.weights import load_checkpoint
from robustgate.provenance import ArtifactKey, artifact_key, environment
from robustgate.spec.model import BASELINE, Spec
from robustgate.spec.paths import resolve_path

_CORRUPTED_BYTES = 512 * 2**20  # corrupted image sets kept in memory for the next model


class Workspace:
    """Builds and remembers what one spec's contracts need; the checks read it through :meth:`logits`."""

    def __init__(self, spec: Spec, cache: ArtifactCache, progress: Callable[[str], None] = lambda _: None) -> None:
        self.spec = spec
        self.cache = cache
        self._progress = progress
        self.datasets = SpecDatasets(spec)
        self.fitted_images = FittedImages(spec, self.datasets.__getitem__)
        self._built: dict[str, BuiltModel] = {}
        self._baseline: BuiltModel | None = None
        self._failed: dict[str, RobustgateError] = {}  # a model that failed to build fails every item fast
        self.clock = PhaseClock()  # seconds spent training, compressing, predicting, ... (for results.json)
        self._on_device: dict[str, Classifier] = {}  # evaluation copies of fp32 models on spec.device
        self._logits: dict[tuple[str, str], torch.Tensor] = {}
        self._outputs: dict[int, int] = {}  # logits per image, by model identity
        self._trained_classes: tuple[str, ...] | None = None
        self._robust: dict[tuple[str, str, float], RobustResult] = {}
        self._corrupted_sets: dict[tuple[str, int | None, str, int], ImageSet] = {}  # oldest first
        self._sampled_sets: dict[tuple[str, int | None], ImageSet] = {}

    @property
    def confidence(self) -> float | str:
        return self.spec.confidence

    @property
    def seed(self) -> int:
        return self.spec.seed

    def progress(self, message: str) -> None:
        self._progress(f"[{self.spec.name}{f'::{self.spec.case}' if self.spec.case else ''}] {message}")

    # -- models -------------------------------------------------------------

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
                return compress(baseline, entry.steps, self._step_context(), self.cache, self._built, self.fingerprint)
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
        return self._baseline

    def size_metrics(self, variant: str) -> dict[str, float | int]:
        """Params, MACs and serialized bytes of a model, and their ratios to the baseline's."""
        size, base = self.model(variant).size, self.baseline().size
        return {
            **size.as_dict(),
            "params_ratio": size.params / base.params,
            "macs_ratio": size.macs / base.macs if base.macs else 1.0,
            "size_ratio": size.bytes / base.bytes,
            **{f"baseline_{name}": value for name, value in base.as_dict().items()},  # what each ratio is of
        }

    def _build_baseline(self) -> BuiltModel:
        params = self.spec.model
        with torch.random.fork_rng(devices=[]):  # seed the network init without touching the caller's RNG
            torch.manual_seed(self.spec.seed)
            net = build_network(params.arch, params.kwargs)
        classifier = Classifier(Normalize(params.input.mean, params.input.std), net)
        self.num_outputs(classifier)
        # The model's code (not just the arch name) enters every key, so an edited user model never reuses
        # weights or predictions of its previous version (and a rebuild names the file); the device changes numerics.
        identity = (params.arch, params.kwargs, params.input, self.spec.device)
        model_provenance = {"model structure": structure_digest(net), **model_code(net, params.arch)}
        origin: tuple = ()  # what training starts from, when not from scratch
        if is_pretrained(params.weights):
            head = load_pretrained(net, params.arch, params.weights)
            path = checkpoint_path(resolve(params.arch, params.weights))
            origin = ("pretrained", path.name, file_digest(path))
            if head and params.train is None:
                raise ModelError(
                    f"weights: {params.weights} gives {params.arch} a new classifier head ({', '.join(head)}) for "
                    f"{self.num_outputs(classifier)} classes, which needs training",
                    hint="add a `train:` section to fine-tune it, e.g. train: {on: my-train-set, epochs: 5, lr: 0.001}",
                )
        if params.train is not None:  # weights: train, or fine-tuning pretrained weights
            train_set = self.datasets[params.train.on]
            self.check_fits(params.train.on, train_set, classifier)
            key = artifact_key(
                ("trained", identity, params.train, train_set.fingerprint(), self.spec.seed, *origin),
                {**environment("weights"), **model_provenance},
            )

            def train() -> dict[str, torch.Tensor]:
                self.progress(f"training {params.arch} on '{params.train.on}' ({len(train_set)} images)")
                with self.clock.phase("training"), build_threads():
                    return train_classifier(
                        copy.deepcopy(classifier), train_set, params.train, seed=self.spec.seed, device=self.device,
                        progress=self.progress,
                    )

            load_state(classifier, self.cache.get_or_create("weights", key, train))
            self._trained_classes = train_set.classes
        elif origin:
            key = artifact_key(("pretrained", identity, *origin), {**environment("loaded"), **model_provenance})
            self.cache.remember(key)
        else:
            path = resolve_path(params.weights, self.spec.directory)
            load_checkpoint(classifier.net, path, trusted=params.trusted, arch=params.arch)
            key = artifact_key(("weights-file", identity, file_digest(path)), {**environment("loaded"), **model_provenance})
            self.cache.remember(key)
        classifier.eval()
        return BuiltModel(classifier, key, measure(classifier, self.example()), differentiable=True)

    def _step_context(self) -> StepContext:
        train = self.spec.model.train
        return StepContext(
            dataset=self.datasets.__getitem__,
            default_data=train.on if train else None,
            example=self.example(),
            seed=self.spec.seed,
            progress=self.progress,
            device=self.device,
        )

    @property
    def device(self) -> torch.device:
        if self.spec.device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError(
                f"the spec asks for device: {self.spec.device} but torch sees no CUDA device",
                hint="run on a machine with a GPU, or set device: cpu",
            )
        return torch.device(self.spec.device)

    def _evaluation_copy(self, variant: str, built: BuiltModel) -> tuple[Classifier, torch.device]:
        """The model to evaluate and where: fp32 models on spec.device (a copy, so the CPU model that
        compressors read stays put), int8 models on the CPU, where torch.ao's kernels run."""
        if not built.differentiable or self.device.type == "cpu":
            return built.model, torch.device("cpu")
        if variant not in self._on_device:
            self._on_device[variant] = copy.deepcopy(built.model).to(self.device).eval()
        return self._on_device[variant], self.device

    def example(self) -> torch.Tensor:
        size = self.spec.model.input.size
        return torch.zeros(2, self.spec.model.input.channels, *size)

    def num_outputs(self, model: Classifier) -> int:
        if id(model) not in self._outputs:
            self._outputs[id(model)] = self._count_outputs(model)
        return self._outputs[id(model)]

    def _count_outputs(self, model: Classifier) -> int:
        try:
            with torch.no_grad():
                out = model.eval()(self.example())
        except Exception as err:  # any failure here means the arch does not accept the declared input
            raise ModelError(
                f"{self.spec.model.arch} fails on a {list(self.example().shape[1:])} input: {type(err).__name__}: {err}",
                hint="check model.input (size, and one mean/std value per channel) against the architecture",
            ) from None
        if not isinstance(out, torch.Tensor):
            raise ModelError(
                f"{self.spec.model.arch} returns {describe_output(out)}, not a tensor of logits",
                hint="make the model's forward return the batch x classes logits alone: wrap it in a module whose "
                "forward returns e.g. `self.net(x)[0]` or `self.net(x)['logits']`, and give that wrapper as arch:",
            )
        if out.dim() != 2:
            raise ModelError(f"{self.spec.model.arch} returns shape {list(out.shape)}, not batch x classes logits")
        return int(out.shape[1])

    def check_fits(self, name: str, data: ImageSet, model: Classifier) -> None:
        outputs = self.num_outputs(model)
        if len(data.classes) != outputs:
            raise DataError(
                f"dataset '{name}' has {len(data.classes)} classes but the model outputs {outputs} logits",
                hint=f"set model kwargs num_classes: {len(data.classes)}, or evaluate on a dataset with {outputs} classes",
            )
        trained = self._trained_classes
        if trained is not None and data.classes != trained:
            # Label i must mean the same class as in training, or accuracies are silently wrong.
            raise DataError(
                f"dataset '{name}' has classes {_preview(data.classes)} but the model was trained on {_preview(trained)}",
                hint="name the class folders as in the training set (labels follow the sorted folder names)",
            )

    # -- evaluation -----------------------------------------------------------

    def fingerprint(self, dataset: str) -> str:
        return self.datasets[dataset].fingerprint()

    def images_id(self, dataset: str, samples: int | None = None) -> str:
        return self._sampled(dataset, samples).fingerprint()

    def labels(self, dataset: str) -> torch.Tensor:
        return self.datasets[dataset].labels

    def logits(self, variant: str, dataset: str) -> torch.Tensor:
        """Clean logits of ``variant`` on every image of ``dataset`` (cached by model and data content)."""
        count_images(len(self.datasets[dataset]), f"{variant} on '{dataset}'")
        if (variant, dataset) in self._logits:
            return self._logits[(variant, dataset)]
        built = self.model(variant)
        data = self.datasets[dataset]
        entry = self.spec.datasets[dataset]
        try:
            self.check_fits(dataset, data, built.model)
        except RobustgateError as err:
            raise err.at(self.spec.where(entry.line)) from None
        key = artifact_key(("logits", data.fingerprint()), environment("logits"), {"model": built.key})
        logits = self.cache.get_or_create("logits", key, lambda: self._predict(variant, built, data, f"'{dataset}'"))
        self._logits[(variant, dataset)] = logits
        return logits

    def _predict(self, variant: str, built: BuiltModel, data: ImageSet, what: str) -> torch.Tensor:
        model, device = self._evaluation_copy(variant, built)
        with self.clock.phase("prediction"):
            logits = predict_logits(model, data, device)
        bad = int((~torch.isfinite(logits)).any(dim=1).sum())
        if bad:
            raise ModelError(
                f"{variant} produced NaN or infinite logits on {bad} of {len(data)} images of {what}",
                hint="check the weights (a diverged training run?) and the input normalisation",
            )
        return logits

    # -- corruptions -----------------------------------------------------------

    def sample(self, dataset: str, samples: int | None) -> torch.Tensor | None:
        """Indices of a stratified subset of ``dataset``, the same for every model; None: all of it."""
        labels = self.labels(dataset)
        if samples is None or samples >= len(labels):
            return None
        return stratified_sample(labels, samples, self.spec.seed)

    def corrupted_logits(self, variant: str, dataset: str, corruption: str, severity: int, samples: int | None) -> torch.Tensor:
        """Logits of ``variant`` on ``dataset`` (or its ``samples`` subset) under one corruption and severity.

        Cached by model, images, corruption, severity, seed and the corruptions' code (a provenance
        component), so a warm run neither corrupts nor predicts again."""
        self.logits(variant, dataset)  # checks the model fits the images, and fails with the dataset's line
        built = self.model(variant)
        images = self._sampled(dataset, samples)  # the exact images, whatever picked them
        count_images(len(images), f"{variant} on '{dataset}' under {corruption} at severity {severity}")
        key = artifact_key(
            ("corrupted-logits", images.fingerprint(), corruption, severity, self.spec.seed),
            environment("corrupted-logits"),
            {"model": built.key},
        )

        def predict() -> torch.Tensor:
            data = self._corrupted(dataset, samples, corruption, severity)
            return self._predict(variant, built, data, f"'{dataset}' under {corruption} at severity {severity}")

        return self.cache.get_or_create("logits", key, predict)

    def _sampled(self, dataset: str, samples: int | None) -> ImageSet:
        """``dataset`` or its stratified subset, made once: its fingerprint (a hash of every pixel) keys
        each of a contract's corruption x severity x model predictions."""
        if (dataset, samples) not in self._sampled_sets:
            indices = self.sample(dataset, samples)
            data = self.datasets[dataset]
            self._sampled_sets[(dataset, samples)] = data if indices is None else data.subset(indices)
        return self._sampled_sets[(dataset, samples)]

    def _corrupted(self, dataset: str, samples: int | None, corruption: str, severity: int) -> ImageSet:
        """The corrupted images, kept while they fit a memory budget (every model sees the same ones)."""
        memo = (dataset, samples, corruption, severity)
        if memo not in self._corrupted_sets:
            data = self._sampled(dataset, samples)
            self.progress(f"corrupting '{dataset}' ({len(data)} images) with {corruption} at severity {severity}")
            with self.clock.phase("corruption"):
                self._corrupted_sets[memo] = corrupt(data, corruption, severity, seed=self.spec.seed)
            kept = self._corrupted_sets
            while len(kept) > 1 and sum(c.images.numel() for c in kept.values()) > _CORRUPTED_BYTES:
                kept.pop(next(iter(kept)))
        return self._corrupted_sets[memo]

    # -- latency ---------------------------------------------------------------

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
            fresh = self._build_baseline()
            if variant != BASELINE:
                steps = self.spec.variants[variant].steps
                fresh = compress(fresh, steps, self._step_context(), self.cache, {}, self.fingerprint)
            model = fresh.model
        return model.eval(), time.perf_counter() - start

    def latency_smoke(self, variant: str, params: Any) -> None:
        """One untimed query, for runs that switch timing off (--benchmark-disable)."""
        model, _ = self.restored(variant)
        channels, size = self.spec.model.input.channels, self.spec.model.input.size
        query_of(model, torch.rand(params.batch_size, channels, *size))()

    def latency(self, variant: str, params: Any, runner: RoundRunner = loop_runner, previous_p50_ms: float | None = None) -> LatencyResult:
        """Time ``variant`` under a latency contract on the CPU (never cached: timings are of this run)."""
        model, load_seconds = self.restored(variant)
        channels, size = self.spec.model.input.channels, self.spec.model.input.size
        generator = torch.Generator().manual_seed(self.spec.seed)
        batch = torch.rand(params.batch_size, channels, *size, generator=generator)
        speedup = params.min_speedup is not None and variant != BASELINE
        one_sided = None if self.confidence == "point" else (1 + float(self.confidence)) / 2
        needed = queries_needed(params.min_queries, params.gated_percentiles(), speedup, one_sided)
        plan = Plan(warmup=params.warmup, min_queries=needed, min_seconds=params.min_seconds)
        self.progress(f"timing {variant}: batch {params.batch_size}, {params.threads} thread(s), at least {needed} queries")
        reference = query_of(self.restored(BASELINE)[0], batch) if speedup else None  # restored before threads are pinned
        with torch_threads(params.threads), self.clock.phase("latency"):
            timings = time_queries(query_of(model, batch), plan, runner, reference)
            throughput = None
            if params.throughput is not None:
                big = torch.rand(params.throughput_batch, channels, *size, generator=generator)
                throughput = time_queries(query_of(model, big), Plan(params.warmup and 3, 20, 0.0), loop_runner).seconds
            peak = peak_memory_mb(query_of(model, batch))
        return LatencyResult(
            seconds=timings.seconds, reference=timings.reference, speedups=timings.ratios, throughput_seconds=throughput, load_seconds=load_seconds,
            peak_memory_mb=peak, previous_p50_ms=previous_p50_ms, machine=describe(params.threads),
        )

    # -- attacks ---------------------------------------------------------------

    def robust(self, variant: str, params: Any, strength: float) -> RobustResult:
        """Per-image robustness of ``variant`` under an attack contract at one strength (cached).

        Raises :class:`IncompleteProtocol` when a leg of the int8 protocol cannot run and the contract
        does not accept its absence; the result's ``gaps`` name the absences it accepted."""
        memo = (variant, params.model_dump_json(), strength)
        count_images(len(self._sampled(params.on, params.samples)),
                     f"{variant} under {params.kind} at {format_strength(strength)} on '{params.on}'")
        if memo in self._robust:
            return self._robust[memo]
        built, parent, data = self._attack_inputs(variant, params)
        settings = AttackSettings(strength, params.norm, params.steps, params.step_size, params.restarts)
        key = self._attack_key("attacks", ("attack", strength), built, parent, data, params)
        policy = Policy(frozenset(params.accept_missing), params.min_twin_agreement)

        def run() -> dict[str, Any]:
            indirect = not built.differentiable and attack_kinds.get(params.kind).needs_gradients
            how = "through its fake-quant twin, transfer from its fp32 parent and a gradient-free attack" if indirect else "directly"
            how += " and by a gradient-free attack (symmetric)" if self._symmetric(built, params) else ""
            self.progress(
                f"attacking {variant} with {params.kind} at {format_strength(strength)} on '{params.on}' "
                f"({len(data)} images) {how}"
            )
            model, _ = self._evaluation_copy(variant, built)
            fp32 = self._evaluation_copy(f"{variant} (parent)", parent)[0] if parent else None
            started = time.perf_counter()
            with self.clock.phase("attack"):
                result = robust_correct(
                    params.kind, settings, model, fp32, data.floats(), data.labels, self.spec.seed, params.queries,
                    differentiable=built.differentiable, policy=policy, symmetric=self._symmetric(built, params),
                )
            return {
                "correct": result.correct, "found_by": result.found_by, "legs": list(result.legs),
                "twin_agreement": torch.tensor([] if result.twin_agreement is None else [result.twin_agreement]),
                "unavailable": dict(result.unavailable),
                "first_fooled": torch.tensor([], dtype=torch.int16) if result.first_fooled is None else result.first_fooled,
                "seconds": torch.tensor([time.perf_counter() - started]),
            }

        stored = self.cache.get_or_create("attacks", key, run)
        agreement, first_fooled = stored["twin_agreement"], stored["first_fooled"]
        result = RobustResult(
            stored["correct"], stored["found_by"], float(agreement[0]) if len(agreement) else None,
            dict(stored["unavailable"]), first_fooled if len(first_fooled) else None, float(stored["seconds"][0]),
            legs=tuple(stored["legs"]),
        )
        # Judged on every read, cached or not: a stricter contract on a warm cache fails as a cold run would.
        self._robust[memo] = result = replace(result, gaps=policy.gaps(result.unavailable, result.twin_agreement))
        return result

    def masking_findings(self, variant: str, params: Any) -> list[str]:
        """Signs of a too-weak evaluation (gradient masking) at the contract's largest strength (cached)."""
        strength = max(params.strengths)
        result = self.robust(variant, params, strength)
        built, parent, data = self._attack_inputs(variant, params)
        thorough = params.diagnostics == "thorough"
        key = self._attack_key("masking", ("masking", strength, thorough), built, parent, data, params)

        def run() -> dict[str, list[str]]:
            checks = "thorough" if thorough else "default"
            self.progress(f"checking {variant} for gradient masking under {params.kind} on '{params.on}' ({checks} checks)")
            model, _ = self._evaluation_copy(variant, built)
            attacker = model
            if not built.differentiable:
                try:
                    attacker = fake_quant_twin(model, data.floats()[:2])
                except NoTwin:  # accepted by the contract (robust() refuses otherwise); the finding says so
                    attacker = None
            settings = AttackSettings(strength, params.norm, params.steps, params.step_size, params.restarts)
            started = time.perf_counter()
            with self.clock.phase("attack"):
                findings = masking_findings(
                    params.kind, settings, attacker, model, data.floats(), data.labels, result,
                    len(data.classes), self.spec.seed, params.queries, thorough,
                )
            seconds = time.perf_counter() - started
            self.progress(
                f"gradient-masking checks ({checks}) on {variant} took {seconds:.1f} s, "
                f"{seconds / max(result.seconds, 1e-9):.1f}x the attack's {result.seconds:.1f} s"
            )
            return {"findings": findings}

        return list(self.cache.get_or_create("masking", key, run)["findings"])

    def _attack_inputs(self, variant: str, params: Any) -> tuple[BuiltModel, BuiltModel | None, ImageSet]:
        """The model, its differentiable parent when it has no gradients itself, and the images to attack."""
        built = self.model(variant)
        data = self.datasets[params.on]
        try:
            self.check_fits(params.on, data, built.model)
        except RobustgateError as err:
            raise err.at(self.spec.where(self.spec.datasets[params.on].line)) from None
        data = self._sampled(params.on, params.samples)  # the images images_id() names for paired comparisons
        parent = None if built.differentiable else self._differentiable_parent(variant)
        return built, parent, data

    def _attack_key(
        self, kind: str, what: tuple, built: BuiltModel, parent: BuiltModel | None, data: ImageSet, params: Any,
    ) -> ArtifactKey:
        """An attack's or masking check's key (the protocol's code enters through the attacks code digest)."""
        attack = params.model_dump(include={"kind", "norm", "steps", "step_size", "restarts", "queries"})
        if self._symmetric(built, params):  # an int8 model's legs are the same either way: its results are reused
            attack["symmetric"] = True
        return artifact_key(
            (*what, data.fingerprint(), attack, self.spec.seed),
            environment(kind),
            {"model": built.key, "fp32 parent": parent.key if parent else None},
        )

    @staticmethod
    def _symmetric(built: BuiltModel, params: Any) -> bool:
        """Whether this attack adds the gradient-free leg to a model that has autograd (``symmetric: true``)."""
        return bool(params.symmetric) and built.differentiable and attack_kinds.get(params.kind).needs_gradients

    def _differentiable_parent(self, variant: str) -> BuiltModel:
        """The variant before its last non-differentiable step: the fp32 model it was quantized from."""
        steps = self.spec.variants[variant].steps
        last = max(i for i, step in enumerate(steps) if not compression_steps.get(step.kind).differentiable)
        return compress(self.baseline(), steps[:last], self._step_context(), self.cache, self._built, self.fingerprint)


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


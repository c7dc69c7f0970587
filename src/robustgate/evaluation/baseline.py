"""The spec's uncompressed model: trained, fine-tuned from pretrained weights, or loaded from a weights file."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch

from robustgate.cache import ArtifactCache, versioned_file_digest
from robustgate.checkpoints import is_pretrained
from robustgate.compressors.pipeline import BuiltModel, measure
from robustgate.data.resolve import SpecDatasets
from robustgate.errors import ModelError
from robustgate.evaluation.model_io import check_fits, count_outputs, example_input, spec_device
from robustgate.models.architectures import build_network, model_code, structure_digest
from robustgate.models.classifier import Classifier, Normalize
from robustgate.models.pretrained import checkpoint_path, load_pretrained, resolve
from robustgate.models.state import load_state
from robustgate.models.train import train_classifier
from robustgate.models.weights import load_checkpoint
from robustgate.phases import PhaseClock
from robustgate.provenance import ArtifactKey, artifact_key, environment
from robustgate.spec.model import Spec
from robustgate.spec.paths import resolve_path
from robustgate.threads import build_threads


@dataclass(frozen=True)
class Baseline:
    built: BuiltModel
    trained_classes: tuple[str, ...] | None  # the training set's classes, which evaluated labels must mean; None: not trained here


def build_baseline(
    spec: Spec, cache: ArtifactCache, datasets: SpecDatasets, clock: PhaseClock, progress: Callable[[str], None],
) -> Baseline:
    """Build the spec's model and give it its weights (trained through the cache, or loaded)."""
    params = spec.model
    net = _network(spec)
    classifier = Classifier(Normalize(params.input.mean, params.input.std), net)
    outputs = count_outputs(classifier, spec)
    trained_classes = None
    if is_pretrained(params.weights):
        head = load_pretrained(net, params.arch, params.weights)
        if head and params.train is None:
            raise ModelError(
                f"weights: {params.weights} gives {params.arch} a new classifier head ({', '.join(head)}) for "
                f"{outputs} classes, which needs training",
                hint="add a `train:` section to fine-tune it, e.g. train: {on: my-train-set, epochs: 5, lr: 0.001}",
            )
    if params.train is not None:  # weights: train, or fine-tuning pretrained weights
        training = params.train
        train_set = datasets[training.on]
        check_fits(training.on, train_set, outputs, None)
        key, _ = _key(spec, net, datasets)

        def train() -> dict[str, torch.Tensor]:
            progress(f"training {params.arch} on '{training.on}' ({len(train_set)} images)")
            with clock.phase("training"), build_threads():
                return train_classifier(
                    copy.deepcopy(classifier), train_set, training, seed=spec.seed, device=spec_device(spec),
                    progress=progress,
                )

        load_state(classifier, cache.get_or_create("weights", key, train))
        trained_classes = train_set.classes
    else:
        if not is_pretrained(params.weights):
            load_checkpoint(classifier.net, resolve_path(params.weights, spec.directory), trusted=params.trusted,
                            arch=params.arch)
        key, _ = _key(spec, net, datasets)
        cache.remember(key)
    classifier.eval()
    built = BuiltModel(classifier, key, measure(classifier, example_input(spec)), differentiable=True)
    return Baseline(built, trained_classes)


def baseline_key(spec: Spec, datasets: SpecDatasets) -> tuple[ArtifactKey, bool]:
    """The baseline's cache key, computed without training it or loading its weights, and whether that key names
    a cache entry (trained weights) rather than weights read from a file. Reads the training set, if any."""
    return _key(spec, _network(spec), datasets)


def _network(spec: Spec) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):  # seed the network init without touching the caller's RNG
        torch.manual_seed(spec.seed)
        return build_network(spec.model.arch, spec.model.kwargs)


def _key(spec: Spec, net: torch.nn.Module, datasets: SpecDatasets) -> tuple[ArtifactKey, bool]:
    """The key of the baseline built on ``net`` (freshly built: its structure is read, not its weights)."""
    params = spec.model
    # The model's code (not just the arch name) enters every key, so an edited user model never reuses
    # weights or predictions of its previous version (and a rebuild names the file); the device changes numerics.
    identity = (params.arch, params.kwargs, params.input, spec.device)
    model_provenance = {"model structure": structure_digest(net), **model_code(net, params.arch)}
    origin: tuple = ()  # what training starts from, when not from scratch
    if is_pretrained(params.weights):
        path = checkpoint_path(resolve(params.arch, params.weights))
        origin = ("pretrained", path.name, versioned_file_digest(path))
    if params.train is not None:
        training = params.train
        what = ("trained", identity, training, datasets[training.on].fingerprint(), spec.seed, *origin)
        return artifact_key(what, {**environment("weights"), **model_provenance}), True
    if origin:
        return artifact_key(("pretrained", identity, *origin), {**environment("loaded"), **model_provenance}), False
    path = resolve_path(params.weights, spec.directory)
    what = ("weights-file", identity, versioned_file_digest(path))
    return artifact_key(what, {**environment("loaded"), **model_provenance}), False

"""What the models answer: clean logits per dataset, and logits on sampled, corrupted images.

Logits are cached by model and image content; the sampled and corrupted image sets are kept in
memory so every model of the spec sees the very same images.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from robustgate.budget import count_images, metered
from robustgate.cache import ArtifactCache
from robustgate.compressors.pipeline import BuiltModel
from robustgate.data.corruptions import corrupt
from robustgate.data.imageset import ImageSet
from robustgate.data.resolve import SpecDatasets
from robustgate.data.splits import stratified_sample
from robustgate.errors import ModelError, RobustgateError
from robustgate.evaluation.models import ModelStore
from robustgate.inference import predict_logits
from robustgate.phases import PhaseClock
from robustgate.provenance import ArtifactKey, artifact_key, environment
from robustgate.spec.model import Spec

CORRUPTED_BYTES = 512 * 2**20  # corrupted image sets kept in memory for the next model, oldest dropped first

CorruptedSet = tuple[str, int | None, str, int]  # dataset, samples, corruption, severity


class Predictions:
    """Logits of one spec's models on its datasets, clean or corrupted, and the image subsets they are of."""

    def __init__(
        self, spec: Spec, cache: ArtifactCache, datasets: SpecDatasets, clock: PhaseClock, models: ModelStore,
        progress: Callable[[str], None],
    ) -> None:
        self.spec, self.cache, self.datasets, self.clock, self.models = spec, cache, datasets, clock, models
        self.progress = progress
        self._logits: dict[tuple[str, str], torch.Tensor] = {}
        self._sampled_sets: dict[tuple[str, int | None], ImageSet] = {}
        self._corrupted_sets: dict[CorruptedSet, ImageSet] = {}  # oldest first
        # the variants this session's items will predict on each corrupted set (plan_corrupted); corrupted logits by
        # key digest when there is no cache to keep them (--robustgate-no-cache), so a set is still made once
        self._planned: dict[CorruptedSet, list[str]] = {}
        self._uncached: dict[str, torch.Tensor] = {}

    def labels(self, dataset: str) -> torch.Tensor:
        return self.datasets[dataset].labels

    def logits(self, variant: str, dataset: str) -> torch.Tensor:
        """Clean logits of ``variant`` on every image of ``dataset`` (cached by model and data content)."""
        count_images(len(self.datasets[dataset]), f"{variant} on '{dataset}'")
        if (variant, dataset) in self._logits:
            return self._logits[(variant, dataset)]
        built = self.models.model(variant)
        data = self.datasets[dataset]
        try:
            self.models.check_fits(dataset, data, built.model)
        except RobustgateError as err:
            raise err.at(self.spec.where(self.spec.datasets[dataset].line)) from None
        key = artifact_key(("logits", data.fingerprint()), environment("logits"), {"model": built.key})
        logits = self.cache.get_or_create("logits", key, lambda: self._predict(variant, built, data, f"'{dataset}'"))
        self._logits[(variant, dataset)] = logits
        return logits

    def images_id(self, dataset: str, samples: int | None = None) -> str:
        """Identifies the exact images (and their order) of ``dataset`` or its ``samples`` subset."""
        return self.sampled(dataset, samples).fingerprint()

    def sample(self, dataset: str, samples: int | None) -> torch.Tensor | None:
        """Indices of a stratified subset of ``dataset``, the same for every model; None: all of it."""
        labels = self.labels(dataset)
        if samples is None or samples >= len(labels):
            return None
        return stratified_sample(labels, samples, self.spec.seed)

    def sampled(self, dataset: str, samples: int | None) -> ImageSet:
        """``dataset`` or its stratified subset, made once: its fingerprint (a hash of every pixel) keys
        each of a contract's corruption x severity x model predictions."""
        if (dataset, samples) not in self._sampled_sets:
            indices = self.sample(dataset, samples)
            data = self.datasets[dataset]
            self._sampled_sets[(dataset, samples)] = data if indices is None else data.subset(indices)
        return self._sampled_sets[(dataset, samples)]

    def corrupted_logits(self, variant: str, dataset: str, corruption: str, severity: int, samples: int | None) -> torch.Tensor:
        """Logits of ``variant`` on ``dataset`` (or its ``samples`` subset) under one corruption and severity.

        Cached by model, images, corruption, severity, seed and the corruptions' code (a provenance
        component), so a warm run neither corrupts nor predicts again."""
        self.logits(variant, dataset)  # checks the model fits the images, and fails with the dataset's line
        built = self.models.model(variant)
        images = self.sampled(dataset, samples)  # the exact images, whatever picked them
        count_images(len(images), f"{variant} on '{dataset}' under {corruption} at severity {severity}")
        key = self._corrupted_key(built, images, corruption, severity)
        if key.digest in self._uncached:
            return self._uncached[key.digest]
        made = []

        def predict() -> torch.Tensor:
            made.append(True)
            data = self._corrupted(dataset, samples, corruption, severity)
            return self._predict(variant, built, data, f"'{dataset}' under {corruption} at severity {severity}")

        logits = self._kept(key, predict)
        if made:
            self._predict_ahead((dataset, samples, corruption, severity), variant)
        return logits

    def _kept(self, key: ArtifactKey, predict: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Corrupted logits from the cache, or from memory in a session without one."""
        logits = self.cache.get_or_create("logits", key, predict)
        if self.cache.root is None:
            self._uncached[key.digest] = logits
        return logits

    def corruption_device(self) -> torch.device:
        """Where corrupted sets are made: the spec's device (a GPU's random draws give other pixels than the
        CPU's, so the device is part of every corrupted set's key)."""
        return self.models.device

    def _corrupted_key(self, built: BuiltModel, images: ImageSet, corruption: str, severity: int) -> ArtifactKey:
        return artifact_key(
            ("corrupted-logits", images.fingerprint(), corruption, severity, self.spec.seed,
             self.corruption_device().type),
            environment("corrupted-logits"),
            {"model": built.key},
        )

    def plan_corrupted(self, variant: str, dataset: str, samples: int | None, corruptions: tuple[str, ...],
                       severities: tuple[int, ...]) -> None:
        """Say that this session will predict ``variant`` on these corrupted sets (a corruptions contract's item).

        When one of them is made, every planned variant predicts on it at once: the set is made once per session
        whatever the number of variants, even when the sets do not all fit in memory (:data:`CORRUPTED_BYTES`)."""
        for corruption in corruptions:
            for severity in severities:
                planned = self._planned.setdefault((dataset, samples, corruption, severity), [])
                if variant not in planned:
                    planned.append(variant)

    def _predict_ahead(self, made: CorruptedSet, by: str) -> None:
        """The planned variants other than ``by`` predict on the set just made, while it is in memory (their
        items read the logits back; the work is charged to no item's budget, as it is theirs)."""
        dataset, samples, corruption, severity = made
        for variant in self._planned.get(made, []):
            if variant == by:
                continue
            images = self.sampled(dataset, samples)
            what = f"'{dataset}' under {corruption} at severity {severity}"
            try:
                with metered(None):
                    built = self.models.model(variant)
                    key = self._corrupted_key(built, images, corruption, severity)
                    if key.digest not in self._uncached:
                        self._kept(key, lambda: self._predict(variant, built, self._corrupted(*made), what))  # noqa: B023
            except (RobustgateError, RuntimeError):  # not this item's to report: the variant's own item meets it again
                continue

    def _predict(self, variant: str, built: BuiltModel, data: ImageSet, what: str) -> torch.Tensor:
        model, device, channels_last = self.models.prediction_copy(variant, built)
        with self.clock.phase("prediction"):
            logits = predict_logits(model, data, device, channels_last=channels_last)
        bad = int((~torch.isfinite(logits)).any(dim=1).sum())
        if bad:
            raise ModelError(
                f"{variant} produced NaN or infinite logits on {bad} of {len(data)} images of {what}",
                hint="check the weights (a diverged training run?) and the input normalisation",
            )
        return logits

    def _corrupted(self, dataset: str, samples: int | None, corruption: str, severity: int) -> ImageSet:
        """The corrupted images, kept while they fit :data:`CORRUPTED_BYTES` (every model sees the same ones)."""
        memo = (dataset, samples, corruption, severity)
        if memo not in self._corrupted_sets:
            data = self.sampled(dataset, samples)
            self.progress(f"corrupting '{dataset}' ({len(data)} images) with {corruption} at severity {severity}")
            with self.clock.phase("corruption"):
                self._corrupted_sets[memo] = corrupt(
                    data, corruption, severity, seed=self.spec.seed, device=self.corruption_device()
                )
            kept = self._corrupted_sets
            while len(kept) > 1 and sum(c.images.numel() for c in kept.values()) > CORRUPTED_BYTES:
                kept.pop(next(iter(kept)))
        return self._corrupted_sets[memo]

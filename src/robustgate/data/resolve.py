"""Materialising the datasets a spec declares, each once per session."""

from __future__ import annotations

from robustgate.data.imageset import ImageSet
from robustgate.data.kinds import LoadContext, dataset_kinds
from robustgate.data.splits import stratified_part, stratified_sample
from robustgate.errors import DataError, RobustgateError
from robustgate.spec.model import Spec


class SpecDatasets:
    """The datasets of one spec at the model's input geometry, loaded lazily and kept in memory."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._loaded: dict[str, ImageSet] = {}
        self._loading: list[str] = []

    def __getitem__(self, name: str) -> ImageSet:
        if name not in self._loaded:
            self._loaded[name] = self._load(name)
        return self._loaded[name]

    def _load(self, name: str) -> ImageSet:
        entry = self.spec.datasets[name]
        if name in self._loading:  # the validator rejects cycles; this guards programmatic specs
            raise DataError(f"dataset '{name}' derives from itself")
        self._loading.append(name)
        model_input = self.spec.model.input
        ctx = LoadContext(
            size=model_input.size,
            channels=model_input.channels,
            spec_dir=self.spec.directory,
            seed=self.spec.seed,
            dataset=self.__getitem__,
        )
        try:
            images = dataset_kinds.get(entry.kind).load(entry.params, ctx)
            params = entry.params
            if params.part is not None:
                images = images.subset(stratified_part(images.labels, params.part, params.split, self.spec.seed))
            if params.samples is not None:
                images = images.subset(stratified_sample(images.labels, params.samples, self.spec.seed))
        except RobustgateError as err:
            if not err.message.startswith(f"dataset '{name}'"):
                err.message = f"dataset '{name}': {err.message}"
            raise err.at(self.spec.where(entry.line)) from None
        finally:
            self._loading.remove(name)
        if len(images) == 0:
            raise DataError(f"dataset '{name}' has no images", where=self.spec.where(entry.line))
        return images

"""The dataset kinds a spec can declare, one registered class each.

A kind turns its validated parameters into an :class:`ImageSet` at the model's
input geometry. The generic keys every kind takes (``part``, ``split``,
``samples``) are applied afterwards by :class:`robustgate.data.resolve.SpecDatasets`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from robustgate.errors import RegistryError, RobustgateError
from robustgate.registry import Registry
from robustgate.spec.fields import DatasetRef, Params
from robustgate.spec.paths import resolve_path

if TYPE_CHECKING:  # kinds are looked up when specs are read; torch is imported when data are loaded
    from robustgate.data.imageset import ImageSet


class DatasetParams(Params):
    """Keys every dataset takes: a stratified part of it and a stratified subsample."""

    part: Literal["train", "test"] | None = None
    split: float = Field(0.8, gt=0.0, lt=1.0)  # the train share when `part` is given
    samples: int | None = Field(None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _split_needs_part(cls, data: Any) -> Any:
        if isinstance(data, dict) and "split" in data and "part" not in data:
            raise ValueError("`split:` sets the train share of `part: train|test`; add `part:` or remove `split:`")
        return data


@dataclass(frozen=True)
class LoadContext:
    """What a kind needs besides its own keys."""

    size: tuple[int, int]
    channels: int
    spec_dir: Path
    seed: int
    dataset: Callable[[str], ImageSet]  # another dataset of the spec, by name (for `from:`)


class DatasetKind:
    """A source of images; subclasses declare ``Params`` and implement ``load``."""

    Params: ClassVar[type[DatasetParams]]

    def load(self, params: Any, ctx: LoadContext) -> ImageSet:
        raise NotImplementedError

    def unavailable(self, params: Any, spec_dir: Path) -> str | None:
        """Why the data is not on this machine (None: it is), checked cheaply at collection for datasets
        marked ``missing: skip``."""
        return None

    def class_count(self, params: Any) -> int | None:
        """How many classes the data has, where that is fixed without reading it (None: known only once loaded),
        so a spec whose model outputs another count is refused when it is read."""
        return None

    def counted_classes(self, params: Any, spec_dir: Path) -> int | None:
        """How many classes the data on this machine has, counted cheaply (ImageFolder: its class folders) for
        ``robustgate validate``; None where only loading tells. Raises for data that is there but unusable."""
        return self.class_count(params)


# External data a spec may be written for without every machine having it (e.g. the Office-31 paper spec):
# `missing: skip` skips the spec's items with one message instead of failing them.
Missing = Literal["fail", "skip"]


dataset_kinds: Registry[DatasetKind] = Registry("dataset kind", base=DatasetKind)


class BuiltinParams(DatasetParams):
    builtin: Literal["digits"]
    domain: Literal["handwritten", "printed"]


@dataclass(frozen=True)
class _Builtin(DatasetKind):
    Params = BuiltinParams

    def load(self, params: BuiltinParams, ctx: LoadContext) -> ImageSet:
        from robustgate.data.digits import load_digits_domain
        from robustgate.data.imageset import ImageSet
        from robustgate.data.resize import to_model_geometry

        images, labels, classes = load_digits_domain(params.domain)
        return ImageSet(to_model_geometry(images, ctx.size, ctx.channels), labels, classes)

    def class_count(self, params: BuiltinParams) -> int:
        # the ten digits of robustgate.data.digits.CLASSES (tests/data checks they agree), counted without
        # importing that module's torch: reading and validating a spec must not import it
        return 10


class ImageFolderParams(DatasetParams):
    imagefolder: str = Field(min_length=1)
    missing: Missing = "fail"


@dataclass(frozen=True)
class _ImageFolder(DatasetKind):
    Params = ImageFolderParams

    def load(self, params: ImageFolderParams, ctx: LoadContext) -> ImageSet:
        from robustgate.data.imagefolder import load_imagefolder

        return load_imagefolder(resolve_path(params.imagefolder, ctx.spec_dir), ctx.size, ctx.channels)

    def unavailable(self, params: ImageFolderParams, spec_dir: Path) -> str | None:
        from robustgate.data.imagefolder import PATH_HINT, check_folder

        try:
            check_folder(resolve_path(params.imagefolder, spec_dir), hint=PATH_HINT)
        except RobustgateError as err:
            return err.one_line()
        return None

    def counted_classes(self, params: ImageFolderParams, spec_dir: Path) -> int | None:
        from robustgate.data.imagefolder import class_folders

        return len(class_folders(resolve_path(params.imagefolder, spec_dir)))


class Office31Params(DatasetParams):
    office31: str = Field(min_length=1)
    domain: Literal["amazon", "dslr", "webcam"]
    missing: Missing = "fail"


@dataclass(frozen=True)
class _Office31(DatasetKind):
    Params = Office31Params

    def load(self, params: Office31Params, ctx: LoadContext) -> ImageSet:
        from robustgate.data.office31 import load_office31

        return load_office31(resolve_path(params.office31, ctx.spec_dir), params.domain, ctx.size, ctx.channels)

    def class_count(self, params: Office31Params) -> int:
        from robustgate.data.office31 import OFFICE31_CLASSES

        return len(OFFICE31_CLASSES)

    def unavailable(self, params: Office31Params, spec_dir: Path) -> str | None:
        from robustgate.data.office31 import OFFICE31_HINT, office31_images

        try:
            office31_images(resolve_path(params.office31, spec_dir), params.domain)
        except RobustgateError as err:
            hint = err.hint or ""  # the fix for this machine, and always where the dataset comes from
            return f"{err.message}; {hint if OFFICE31_HINT in hint else (hint + '. ' if hint else '') + OFFICE31_HINT}"
        return None


def _corruption_names(schema: dict[str, Any]) -> None:
    """The JSON Schema of specs lists the registered corruptions (see robustgate.spec.json_schema)."""
    from robustgate.data.corruptions import corruptions

    schema["enum"] = [*corruptions.names(), None]


class DerivedParams(DatasetParams):
    from_: DatasetRef = Field(alias="from")
    corruption: str | None = Field(None, json_schema_extra=_corruption_names)
    severity: int = Field(3, ge=1, le=5)

    @field_validator("corruption")
    @classmethod
    def _known_corruption(cls, name: str | None) -> str | None:
        from robustgate.data.corruptions import corruptions

        if name is not None:
            try:
                corruptions.get(name)
            except RegistryError as err:  # the registry words it, with "did you mean"
                raise ValueError(err.message) from None
        return name


@dataclass(frozen=True)
class _Derived(DatasetKind):
    Params = DerivedParams

    def load(self, params: DerivedParams, ctx: LoadContext) -> ImageSet:
        from robustgate.data.corruptions import corrupt

        parent = ctx.dataset(params.from_)
        if params.corruption is None:
            return parent
        return corrupt(parent, params.corruption, params.severity, seed=ctx.seed)


dataset_kinds.register("builtin")(_Builtin())
dataset_kinds.register("imagefolder")(_ImageFolder())
dataset_kinds.register("office31")(_Office31())
dataset_kinds.register("from")(_Derived())

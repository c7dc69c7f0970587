"""The validated spec: plain, frozen data that the runners read.

Entries of registered kinds (datasets, compression steps, contracts) keep their
kind name and their validated :class:`~robustgate.spec.fields.Params`; the
layers that run them look the kind up in its registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from robustgate.checkpoints import is_pretrained
from robustgate.spec.factories import arch_json_schema
from robustgate.spec.fields import DatasetRef, Params
from robustgate.spec.yamlmarks import LineMap

if TYPE_CHECKING:  # a type only: the spec layer does not import the data layer at run time
    from robustgate.data.kinds import DatasetParams

BASELINE = "baseline"


class TrainParams(Params):
    """How ``weights: train`` trains the baseline (once; the result is cached)."""

    on: DatasetRef
    epochs: int = Field(6, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["adam", "sgd"] = "adam"
    weight_decay: float = Field(5e-4, ge=0)
    augment: bool = True  # small random translations, which help the model generalise beyond its domain


class InputParams(Params):
    """The model's input geometry and normalisation; data arrive in [0, 1] and are normalised inside the model."""

    # YAML gives lists; strict mode would accept only tuples here.
    size: tuple[int, int] = Field(strict=False, json_schema_extra={"prefixItems": [{"type": "integer", "minimum": 8}] * 2})
    mean: tuple[float, ...] = Field((0.485, 0.456, 0.406), strict=False)
    std: tuple[float, ...] = Field((0.229, 0.224, 0.225), strict=False)

    @field_validator("size", mode="before")
    @classmethod
    def _height_width(cls, size: Any) -> Any:
        # one message for every wrong shape, rather than pydantic's per-item ones (`missing required key '1'`)
        if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(type(side) is int for side in size):
            raise ValueError("expected [height, width], two whole numbers of pixels such as [32, 32]")
        return size

    @field_validator("mean", "std", mode="before")
    @classmethod
    def _per_channel(cls, values: Any) -> Any:
        if not isinstance(values, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise ValueError("expected a list of numbers, one per channel, such as [0.5, 0.5, 0.5]")
        return values

    @field_validator("size")
    @classmethod
    def _positive_size(cls, size: tuple[int, int]) -> tuple[int, int]:
        if min(size) < 8:
            raise ValueError(f"input size {list(size)} is too small: both sides must be at least 8 pixels")
        return size

    @model_validator(mode="after")
    def _channels_agree(self) -> "InputParams":
        if len(self.mean) != len(self.std) or len(self.mean) not in (1, 3):
            raise ValueError(
                f"mean has {len(self.mean)} values and std {len(self.std)}: give one value per channel (1 or 3) to both"
            )
        if min(self.std) <= 0:
            raise ValueError("every std value must be positive")
        return self

    @property
    def channels(self) -> int:
        return len(self.mean)


class ModelParams(Params):
    """The fp32 reference model every variant is compared with."""

    arch: str = Field(min_length=1, json_schema_extra=arch_json_schema)
    kwargs: dict[str, Any] = {}
    weights: str = Field(min_length=1)  # train, imagenet (or a torchvision weights name), or a state_dict file
    train: TrainParams | None = None
    input: InputParams
    trusted: bool = False  # allow torch.load to unpickle arbitrary objects from the weights file

    @field_validator("weights")
    @classmethod
    def _known_weights_entry(cls, weights: str, info: ValidationInfo) -> str:
        arch = info.data.get("arch")  # absent when it did not validate: that is reported on its own
        if arch is not None and is_pretrained(weights):
            from robustgate.errors import ModelError
            from robustgate.models.pretrained import resolve  # torchvision's weights enums: only for such specs

            try:  # the name only: whether the file is on this machine is a run-time question
                resolve(arch, weights)
            except ModelError as err:
                raise ValueError(err.message) from None
        return weights

    @model_validator(mode="after")
    def _train_when_training(self) -> "ModelParams":
        if self.weights == "train" and self.train is None:
            raise ValueError("weights: train needs a `train:` section, e.g. train: {on: my-train-set, epochs: 6}")
        if self.train is not None and self.weights != "train" and not is_pretrained(self.weights):
            raise ValueError(
                f"`train:` trains from scratch (weights: train) or fine-tunes torchvision weights (weights: imagenet), "
                f"but weights is the file {self.weights!r}"
            )
        return self


class BudgetParams(Params):
    """`budget:` of a spec or a contract: what one item may spend evaluating (enforced by robustgate/budget.py)."""

    seconds: float | None = Field(default=None, gt=0)  # wall seconds of evaluation per item
    samples: int | None = Field(default=None, gt=0)  # images evaluated per item, every model and strength counted

    @model_validator(mode="after")
    def _limits_something(self) -> "BudgetParams":
        if self.seconds is None and self.samples is None:
            raise ValueError("a budget needs seconds:, samples: or both, e.g. budget: {seconds: 600}")
        return self


class SpecHeader(BaseModel):
    """The top-level keys; datasets, variants and contracts are validated per registered kind."""

    model_config = {"extra": "forbid", "frozen": True, "strict": True}

    robustgate: Literal[1]
    name: str | None = None
    seed: int = Field(0, ge=0, lt=2**63)  # torch generators take 64-bit seeds
    # json_schema_extra: what the validators below check, for the JSON Schema of specs (`robustgate schema`)
    device: str = Field("cpu", json_schema_extra={"pattern": r"^(cpu|cuda(:\d+)?)$"})
    confidence: Any = Field(0.95, json_schema_extra={"anyOf": [  # a level in [0.5, 1) or "point"; checked below
        {"type": "number", "minimum": 0.5, "exclusiveMaximum": 1}, {"const": "point"}]})
    model: ModelParams
    # Entries are checked one by one against their registered kinds (see spec/parse.py).
    datasets: dict[Any, Any]
    variants: dict[Any, Any] | None = None
    contracts: list[Any]
    budget: BudgetParams | None = None

    @field_validator("contracts", mode="before")
    @classmethod
    def _some_contract(cls, value: Any) -> Any:
        if value is None or value == []:  # a spec that gates nothing would collect no test and pass silently
            raise ValueError("a spec needs at least one contract, e.g. - accuracy: {on: test, min: 0.9}")
        return value

    @field_validator("confidence")
    @classmethod
    def _confidence_level(cls, value: Any) -> float | str:
        if value == "point":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.5 <= value < 1.0:
            raise ValueError("confidence must be a level in [0.5, 1) such as 0.95, or `point` to gate on estimates")
        return float(value)

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
            raise ValueError("device must be `cpu`, `cuda` or `cuda:N`")
        return value


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    kind: str
    params: DatasetParams  # the kind's own Params, a DatasetParams subclass
    line: int


@dataclass(frozen=True)
class Step:
    kind: str
    params: Params


@dataclass(frozen=True)
class Variant:
    name: str
    steps: tuple[Step, ...]
    line: int


@dataclass(frozen=True)
class Contract:
    kind: str
    params: Params
    variants: tuple[str, ...] | None  # None: every variant (and the baseline where it applies)
    line: int
    index: int  # position under `contracts:`, for stable ids
    max_regression: dict[str, float] | None = None  # metric -> how much worse than the previous release it may get
    budget: BudgetParams | None = None  # this contract's own `budget:`, in place of the spec's
    seen_in_training: bool = False  # `seen_in_training: intended`: it evaluates images a model was fitted on, on purpose


@dataclass(frozen=True)
class Spec:
    path: Path
    name: str
    seed: int
    device: str
    confidence: float | Literal["point"]
    model: ModelParams
    datasets: dict[str, DatasetEntry]
    variants: dict[str, Variant]
    contracts: tuple[Contract, ...]
    lines: LineMap
    profile: str | None = None  # the profile merged in (see spec/profiles.py)
    case: str | None = None  # the matrix case this spec is, e.g. resnet50-amazon (see spec/cases.py)
    budget: BudgetParams | None = None  # seconds and images each item may spend evaluating (see budget.py)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def where(self, line: int) -> str:
        return f"{self.lines.path}:{line}"

"""What a corruption is, its registry, and the checks and scales every corruption shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from robustgate.errors import DataError
from robustgate.registry import Registry

if TYPE_CHECKING:  # corruptions are looked up by name when specs are read; torch is imported when they run
    import torch

Corruption = Callable[["torch.Tensor", int, "torch.Generator"], "torch.Tensor"]
corruptions: Registry[Corruption] = Registry("corruption")
# Corruptions that work on the uint8 grid themselves (a JPEG round trip): their uint8 version takes and gives
# uint8 N x C x H x W, the same pixels as the float one rounded, and corrupt() calls it without the float round trip.
on_uint8: dict[str, Corruption] = {}

REFERENCE_SIDE = 224  # ImageNet-C images are 224 x 224; its length constants refer to that
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as torchvision's rgb_to_grayscale and OpenCV's RGB2GRAY


def check_severity(severity: object) -> int:
    if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 5:
        raise DataError(
            f"corruption severity must be an integer from 1 to 5, got {severity!r}",
            hint="use severity: 1 (mildest) .. 5 (strongest), the ImageNet-C levels",
        )
    return severity


def pick(table: tuple[Any, ...], severity: int) -> Any:
    """The constants of ``severity`` (1..5) from a five-row table."""
    return table[check_severity(severity) - 1]


def check_images(images: torch.Tensor) -> None:
    if images.dim() != 4 or not images.is_floating_point():
        raise DataError(
            f"corruptions take float N x C x H x W images in [0, 1], got {images.dtype} {tuple(images.shape)}",
            hint="pass ImageSet.floats(), or use corrupt() on an ImageSet",
        )


def needs_grey_or_rgb(images: torch.Tensor, name: str) -> None:
    if images.shape[1] not in (1, 3):
        raise DataError(
            f"{name} needs 1- or 3-channel images, got {images.shape[1]} channels",
            hint="convert the dataset to grey or RGB (input.channels), or pick a per-channel corruption",
        )


def length_scale(images: torch.Tensor) -> float:
    """Factor from ImageNet-C's 224-pixel lengths to these images' lengths."""
    return min(images.shape[-2:]) / REFERENCE_SIDE


def reference_shape(h: int, w: int) -> tuple[int, int]:
    """The shape these images would have at ImageNet-C's scale: the short side 224, aspect kept."""
    short = min(h, w)
    return round(h * REFERENCE_SIDE / short), round(w * REFERENCE_SIDE / short)


def luma(images: torch.Tensor) -> torch.Tensor:
    """Grey level (N x 1 x H x W) of RGB or grey images."""
    import torch

    if images.shape[1] == 1:
        return images
    weights = torch.tensor(LUMA, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def in_rgb(images: torch.Tensor, name: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Apply an RGB-only transform; grey images go through RGB and back via luma (package doc)."""
    needs_grey_or_rgb(images, name)
    if images.shape[1] == 3:
        return fn(images)
    return luma(fn(images.expand(-1, 3, -1, -1)))


def uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Uniform draws in [low, high) on ``like``'s device, from ``generator``."""
    import torch

    draws = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    return (draws * (high - low) + low).to(like.device)

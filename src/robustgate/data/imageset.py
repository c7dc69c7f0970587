"""The one in-memory form every dataset takes: labelled uint8 images at the model's input size."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class ImageSet:
    """A labelled set of images, ready to feed a model.

    ``images`` is ``uint8`` of shape ``N x C x H x W`` (0..255; corruptions and
    JPEG round-trips land on the same grid, as ImageNet-C's saved files do), so
    a set hashes exactly and takes a quarter of the memory of floats.
    ``labels`` is ``int64`` of shape ``N`` indexing ``classes``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    _fingerprint: list[str] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 N x C x H x W, got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must be int64 of shape (N,)")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def floats(self) -> torch.Tensor:
        """Images as float32 in [0, 1], the range attacks and corruptions work in."""
        return self.images.float().div_(255.0)

    def subset(self, indices: torch.Tensor) -> "ImageSet":
        return ImageSet(self.images[indices].contiguous(), self.labels[indices].contiguous(), self.classes)

    def fingerprint(self) -> str:
        """Content hash of pixels, labels and class names: the cache key of anything computed from this set."""
        if not self._fingerprint:
            digest = hashlib.sha256()
            digest.update(repr((tuple(self.images.shape), self.classes)).encode())
            digest.update(self.images.contiguous().numpy().tobytes())
            digest.update(self.labels.numpy().tobytes())
            self._fingerprint.append(digest.hexdigest())
        return self._fingerprint[0]


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] back onto the uint8 grid (rounded, clamped; clamping after rounding
    gives the same values in one pass less)."""
    return images.mul(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)

"""Bringing decoded images to the model's input geometry."""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as TF


def to_model_geometry(images: torch.Tensor, size: tuple[int, int], channels: int = 3) -> torch.Tensor:
    """Resize uint8 ``N x C x H x W`` images to ``size`` (antialiased) and to ``channels`` channels.

    Grey images are repeated to three channels (as torchvision's ``Grayscale(3)`` does);
    RGB images asked for one channel are converted with ITU-R 601-2 luma.
    """
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"expected uint8 N x C x H x W, got {images.dtype} {tuple(images.shape)}")
    if tuple(images.shape[-2:]) != tuple(size):
        images = TF.resize(images, list(size), antialias=True)
    have = images.shape[1]
    if have == channels:
        return images.contiguous()
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        return TF.rgb_to_grayscale(images, num_output_channels=1).contiguous()
    raise ValueError(f"cannot convert {have}-channel images to {channels} channels")

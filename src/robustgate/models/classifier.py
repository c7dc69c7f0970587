"""The model form every layer sees: [0, 1] images in, logits out, normalisation inside."""

from __future__ import annotations

import torch
from torch import nn


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std``, kept in the model so data, attacks and corruptions stay in [0, 1]."""

    mean: torch.Tensor  # buffers (register_buffer below), declared so they are Tensors to type checkers
    std: torch.Tensor

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


class Classifier(nn.Module):
    """``net`` behind its input normalisation; compressors replace ``net`` and leave ``normalize`` in fp32."""

    def __init__(self, normalize: Normalize, net: nn.Module) -> None:
        super().__init__()
        self.normalize = normalize
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(images))

    def with_net(self, net: nn.Module) -> "Classifier":
        """A new Classifier with ``net`` behind a copy of this one's normalisation (never shared,
        so moving one model between devices cannot move another's)."""
        return Classifier(Normalize(tuple(self.normalize.mean.flatten().tolist()), tuple(self.normalize.std.flatten().tolist())), net)

"""The one tiny network of robustgate's tests, and variants of it that plant one defect each.

Tests that train in-process import it (``from tiny_cnn import build``); every pytester project gets a copy of this
file as ``tinynet.py`` (tests/conftest.py's ``tiny_project``), so specs there name it ``tinynet:build``.
"""

import torch
from torch import nn


def build(num_classes: int = 10, width: int = 16) -> nn.Module:
    """A small real CNN: conv-bn-relu blocks that FX int8 quantization fuses, like a ResNet's.

    ``width`` 16 in specs, cheap to train in every cold test; 32 where a test prunes or distills it to half its
    channels and the half must still learn the digits (tests/conftest.py's ``trained_cnn``)."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes),
    )


class NaNNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.body = build(num_classes)

    def forward(self, x):
        return self.body(x) * float("nan")


def nan_net(num_classes: int = 10) -> nn.Module:
    return NaNNet(num_classes)


class RoundInput(nn.Module):
    """Planted gradient masking: rounding has a zero gradient everywhere."""

    def forward(self, x):
        return torch.round(x * 4) / 4


def rounded(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(RoundInput(), *build(num_classes))


def upsampling(num_classes: int = 10) -> nn.Module:
    """A CNN with a transposed convolution: int8 has one (torch.ao), the fake-quant twin has none."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.ConvTranspose2d(16, 16, 2, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes),
    )


def with_dropout(num_classes: int = 10) -> nn.Module:
    """The same CNN with dropout before its classifier: training draws from torch's global RNG."""
    body = build(num_classes)
    return nn.Sequential(*body[:-1], nn.Dropout(0.5), body[-1])

"""Whether a model's input gradients can guide an attack at all."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from robustgate.attacks.run import device_of

PROBE_IMAGES = 32


def gradient_problem(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> str | None:
    """What is wrong with the cross-entropy's input gradient on up to 32 images, or None if nothing."""
    x = images[:PROBE_IMAGES].to(device_of(model)).clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), labels[:PROBE_IMAGES].to(x.device))
        if not loss.requires_grad:
            return "the model's output does not depend differentiably on its input (no input gradient)"
        (gradient,) = torch.autograd.grad(loss, x, allow_unused=True)
    if gradient is None:
        return "the model's input gradient is None"
    if not bool(torch.isfinite(gradient).all()):
        return "the model's input gradient has NaN or infinite values"
    zero = int((gradient.flatten(1).abs().amax(dim=1) == 0).sum())
    if zero > len(x) // 2:
        return f"the input gradient is exactly zero on {zero} of {len(x)} images"
    return None

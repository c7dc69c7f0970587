"""Batched clean inference: the one place models meet images for evaluation."""

from __future__ import annotations

import torch
from torch import nn

from robustgate.budget import check_time
from robustgate.data.imageset import ImageSet


def predict_logits(
    model: nn.Module, data: ImageSet, device: torch.device, batch_size: int = 256, channels_last: bool = False,
) -> torch.Tensor:
    """Logits for every image of ``data`` (float32, on the CPU), in order; ``channels_last``: the batches are
    given to the model in that memory format (for a model converted to it)."""
    outputs = []
    model.eval()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            check_time("predicting")
            batch = data.images[start : start + batch_size].to(device, non_blocking=True).float().div_(255.0)
            outputs.append(model(batch.contiguous(memory_format=layout)).float().cpu())
    return torch.cat(outputs)

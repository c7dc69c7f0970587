"""A tiny Office-31-shaped tree for tests: the 31 class folders per domain, a few generated JPEGs in each."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from robustgate.data.office31 import OFFICE31_CLASSES


def office31_tree(root: Path, domains: tuple[str, ...] = ("amazon", "webcam"), per_class: int = 4,
                  classes: tuple[str, ...] = OFFICE31_CLASSES) -> Path:
    """An Office-31-shaped tree of tiny JPEGs whose colour encodes the class (so a small CNN can learn it)."""
    generator = torch.Generator().manual_seed(0)
    for domain in domains:
        for index, name in enumerate(classes):
            folder = root / domain / "images" / name
            folder.mkdir(parents=True)
            colour = (index * 37 + torch.tensor([0, 90, 180])) % 256
            for k in range(per_class):
                rgb = (colour + torch.randint(0, 20, (3,), generator=generator)).clamp(0, 255)
                Image.new("RGB", (12, 12), tuple(rgb.tolist())).save(folder / f"frame_{k}.jpg")
    return root

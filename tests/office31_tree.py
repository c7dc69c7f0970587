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
                # a faint texture of its own: no two images the same (a duplicate across the train and test
                # parts would be evaluation on training images, which robustgate fails)
                texture = torch.randint(-3, 4, (12, 12, 3), generator=generator)
                pixels = (rgb + texture).clamp(0, 255).to(torch.uint8).numpy()
                Image.fromarray(pixels, "RGB").save(folder / f"frame_{k}.jpg")
    return root

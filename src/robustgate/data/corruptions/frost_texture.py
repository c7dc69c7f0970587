"""Procedural frost: the textures ``frost`` lays over images.

The ImageNet-C script blends crops of six photographs of frost on glass (``frost1.png`` ..
``frost6.jpg``, shipped beside the script and in the ``imagecorruptions`` wheel, neither of which
robustgate depends on). We generate stand-ins instead: feathery ice crystals (needles with side
branches at +-60 degrees, ice's hexagonal habit) scattered with patchy density, with a soft glow
around them and a fine grain, tinted pale blue. They are not the photographs: ``frost`` numbers
are comparable across robustgate runs, not with published ImageNet-C frost errors.

The bank is an asset, not a random draw: it is made from a fixed seed, the same in every run and
on every machine, as the script's image files are.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

from robustgate.data.corruptions.filters import gaussian_filter

if TYPE_CHECKING:
    import torch

BANK_SIZE = 5  # the script draws np.random.randint(5): frost1..frost5 (its sixth file is never used)
_SEED = 2019
_TINT = (0.80, 0.90, 1.0)  # pale blue-white, like the photographs
_BRANCHES = 6  # side-branch pairs per crystal
_SAMPLES = 64  # points per segment when rasterising


@lru_cache(maxsize=4)
def frost_textures(side: int) -> torch.Tensor:
    """``BANK_SIZE x 3 x side x side`` float32 textures in [0, 1] (cached per side)."""
    import torch  # torch only when corrupting: validating a spec must not import it

    return torch.stack([_texture(torch.Generator().manual_seed(_SEED + i), side) for i in range(BANK_SIZE)])


def _texture(g: torch.Generator, side: int) -> torch.Tensor:
    import torch

    crystals = _crystals(g, side)
    density = _patches(g, side)
    ice = (1 - torch.exp(-1.5 * crystals)) * density
    ice = gaussian_filter(ice[None, None], 0.6)[0, 0]
    glow = gaussian_filter(ice[None, None], 4.0)[0, 0]
    grain = gaussian_filter(torch.rand(1, 1, side, side, generator=g, dtype=torch.float64), 1.0)[0, 0]
    grain = (grain - grain.mean()) / grain.std()
    value = (ice + 1.8 * glow + 0.06 * grain * density + 0.22 * density).clamp(0.0, 1.0)
    tint = torch.tensor(_TINT, dtype=torch.float64).view(3, 1, 1)
    return (value * tint).float()


def _patches(g: torch.Generator, side: int) -> torch.Tensor:
    """Smooth density in [0.15, 1]: frost grows in patches, thicker towards some edges."""
    import torch

    coarse = torch.rand(1, 1, 6, 6, generator=g, dtype=torch.float64)
    smooth = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=True)[0, 0]
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min() + 1e-12)
    return 0.15 + 0.85 * smooth


def _crystals(g: torch.Generator, side: int) -> torch.Tensor:
    """Summed brightness of anti-aliased crystal lines on a ``side x side`` canvas."""
    import torch

    count = side * side // 350

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=g, dtype=torch.float64)

    origin = rand(count, 2) * side
    angle = rand(count) * 2 * math.pi
    length = 6 + 46 * rand(count) ** 2  # many small crystals, a few long needles
    brightness = 0.35 + 0.65 * rand(count)
    # segment starts, directions, lengths: the needle, then branch pairs along it
    starts, angles, lengths, weights = [origin], [angle], [length], [brightness]
    for k in range(1, _BRANCHES + 1):
        along = k / (_BRANCHES + 1)
        at = origin + (along * length)[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        for turn in (math.pi / 3, -math.pi / 3):
            starts.append(at)
            angles.append(angle + turn)
            lengths.append(length * (1 - along) * (0.25 + 0.35 * rand(count)))
            weights.append(brightness * 0.8)
    start, direction = torch.cat(starts), torch.cat(angles)
    extent, weight = torch.cat(lengths), torch.cat(weights)
    t = torch.linspace(0, 1, _SAMPLES, dtype=torch.float64)
    x = start[:, None, 0] + t * extent[:, None] * torch.cos(direction)[:, None]
    y = start[:, None, 1] + t * extent[:, None] * torch.sin(direction)[:, None]
    # ~2 samples per pixel of line: weight each so a line adds its brightness once per pixel it crosses
    per_pixel = (extent / (_SAMPLES - 1)).clamp(max=1.0)[:, None] * weight[:, None]
    return _splat(x.reshape(-1), y.reshape(-1), per_pixel.expand_as(x).reshape(-1), side)


def _splat(x: torch.Tensor, y: torch.Tensor, value: torch.Tensor, side: int) -> torch.Tensor:
    """Add ``value`` at sub-pixel points with bilinear weights; points off the canvas wrap around,
    so the texture tiles and has no empty border."""
    import torch

    canvas = torch.zeros(side * side, dtype=torch.float64)
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    for dx, dy, share in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        cols = (x0.long() + dx).remainder(side)
        rows = (y0.long() + dy).remainder(side)
        canvas.scatter_add_(0, rows * side + cols, value * share)
    return canvas.view(side, side)

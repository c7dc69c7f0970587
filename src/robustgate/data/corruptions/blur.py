"""Blur corruptions: gaussian, defocus, glass, motion and zoom."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

from robustgate.data.corruptions.base import (
    REFERENCE_SIDE, check_images, corruptions, length_scale, pick, reference_shape,
)
from robustgate.data.corruptions.filters import (
    clipped_zoom, correlate_2d, gaussian_filter, gaussian_kernel, resize,
)

if TYPE_CHECKING:
    import torch

_GAUSSIAN_BLUR = (1, 2, 3, 4, 6)  # make_imagenet_c.py gaussian_blur: sigma in pixels at 224 x 224


@corruptions.register("gaussian_blur")
def gaussian_blur(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Gaussian blur as ``skimage.filters.gaussian(sigma=c)``: scipy's 'nearest' border,
    kernel truncated at 4 sigma. Sigma is scaled by ``min(H, W) / 224`` (see the package doc)."""
    check_images(images)
    sigma = pick(_GAUSSIAN_BLUR, severity) * length_scale(images)
    return gaussian_filter(images, sigma).clamp_(0.0, 1.0)


@lru_cache(maxsize=64)
def _disk_kernel(radius: float, alias_sigma: float, alias_radius: int) -> torch.Tensor:
    """Normalised 2-D kernel: the fraction of each pixel covered by a disk of ``radius``
    (16 x 16 supersampling), convolved with ImageNet-C's small anti-alias Gaussian."""
    import torch  # torch and numpy only when corrupting: validating a spec must not import them
    import torch.nn.functional as F

    half = math.ceil(radius + 0.71) + alias_radius  # a pixel centre within r + sqrt(2)/2 can be touched
    sub = 16
    offsets = (torch.arange(sub, dtype=torch.float64) + 0.5) / sub - 0.5
    pos = (torch.arange(-half, half + 1, dtype=torch.float64)[:, None] + offsets).reshape(-1)
    inside = (pos[:, None] ** 2 + pos[None, :] ** 2) <= radius**2
    size = 2 * half + 1
    coverage = inside.to(torch.float64).reshape(size, sub, size, sub).mean(dim=(1, 3))
    if coverage.sum() == 0:  # radius far below a pixel: the disk is the identity
        coverage[half, half] = 1.0
    g = gaussian_kernel(max(alias_sigma, 1e-6), alias_radius)
    kernel = F.conv2d(
        F.pad(coverage, (alias_radius,) * 4).view(1, 1, size + 2 * alias_radius, -1),
        (g[:, None] * g[None, :]).view(1, 1, 2 * alias_radius + 1, -1),
    ).view(size, size)
    return kernel / kernel.sum()


# make_imagenet_c.py defocus_blur: (disk radius, alias-blur sigma) in pixels at 224 x 224
_DEFOCUS_BLUR = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))


@corruptions.register("defocus_blur")
def defocus_blur(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Out-of-focus blur: convolution with an anti-aliased disk (OpenCV's reflect-101 border).
    Radius and alias sigma are scaled by ``min(H, W) / 224`` (see the package doc)."""
    check_images(images)
    radius, alias = pick(_DEFOCUS_BLUR, severity)
    scale = length_scale(images)
    alias_radius = 1 if radius <= 8 else 2  # make_imagenet_c.py disk(): GaussianBlur ksize 3x3, or 5x5 past r = 8
    kernel = _disk_kernel(round(radius * scale, 6), round(alias * scale, 6), alias_radius)
    return correlate_2d(images, kernel).clamp_(0.0, 1.0)


# make_imagenet_c.py glass_blur: (sigma, largest shuffle offset, sweeps) in pixels at 224 x 224
_GLASS_BLUR = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))


@lru_cache(maxsize=16)
def _glass_schedule(h: int, w: int, reach: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """The script's sweep (rows ``h - reach`` down to ``reach + 1``, in each row the columns likewise)
    grouped into wavefronts of steps that cannot touch a common pixel.

    The script writes ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on an H x W x 3 array, where
    ``x[h, w]`` is a view: the first assignment overwrites the view the second one reads, so the
    pixel at (h, w) takes its neighbour's value and the neighbour keeps its own. It copies, it does
    not swap (pixels get duplicated), and we reproduce that. A step at (r, c) touches (r, c) and a
    partner within offsets ``-reach .. reach - 1``, so two steps can interact only if they are
    less than ``2 reach`` apart on both axes. Ordering them by
    ``t = 2 reach (h - r) + (w - c)`` keeps every such pair in sweep order (a row above comes
    later by at least ``2 reach - (2 reach - 1) = 1``), and swaps with equal ``t`` are at least
    ``2 reach`` columns apart: each wavefront can swap at once and the result is the serial one.
    Returns the flat positions in sweep order, the permutation into wavefront order, and the
    wavefront boundaries."""
    import torch

    rows = torch.arange(h - reach, reach, -1)
    cols = torch.arange(w - reach, reach, -1)
    r, c = (grid.reshape(-1) for grid in torch.meshgrid(rows, cols, indexing="ij"))
    t = 2 * reach * (h - r) + (w - c)
    order = torch.argsort(t, stable=True)
    counts = torch.unique_consecutive(t[order], return_counts=True)[1]
    bounds = (0, *torch.cumsum(counts, 0).tolist())
    return r * w + c, order, bounds


def _glass_permutation(n: int, h: int, w: int, reach: int, sweeps: int, generator: torch.Generator) -> torch.Tensor:
    """For each image, which source pixel ends at each flat position after the script's sweeps.

    The swaps run in numpy on one flat array for the whole batch, pixel-major (the images' copies
    of a pixel side by side, so a wavefront reads and writes short contiguous runs): a wavefront
    is one fancy-index read and one write, where torch's per-call overhead is several times that."""
    import numpy as np
    import torch

    positions, order, bounds = _glass_schedule(h, w, reach)
    here = positions[order].numpy().astype(np.int32)[:, None]  # wavefront order, P x 1
    image = np.arange(n, dtype=np.int32)[None, :]
    perm = np.repeat(np.arange(h * w, dtype=np.int32), n)  # flat [pixel * n + image] -> source pixel
    pairs = np.empty((len(here), n, 2), dtype=np.int32)
    pairs[..., 0] = here * n + image
    for _ in range(sweeps):
        # the script draws (dx, dy) = randint(-reach, reach, size=2) at each position of the sweep
        draws = torch.randint(-reach, reach, (n, positions.numel(), 2), generator=generator, device=generator.device)
        shift = (draws[..., 1] * w + draws[..., 0]).cpu().numpy().astype(np.int32).T[order.numpy()]  # P x n
        pairs[..., 1] = (here + shift) * n + image
        for start, stop in zip(bounds[:-1], bounds[1:]):
            index = pairs[start:stop]
            perm[index[..., 0]] = perm[index[..., 1]]  # a copy, not a swap: see _glass_schedule
    return torch.from_numpy(perm.reshape(h * w, n).T.astype(np.int64))


def _glass(images: torch.Tensor, sigma: float, reach: int, sweeps: int, generator: torch.Generator) -> torch.Tensor:
    n, c, h, w = images.shape
    blurred = gaussian_filter(images, sigma).clamp_(0.0, 1.0)
    blurred = blurred.mul_(255).floor_().div_(255)  # the script's np.uint8(... * 255) truncates
    perm = _glass_permutation(n, h, w, reach, sweeps, generator).to(images.device)
    shuffled = blurred.flatten(2).gather(2, perm.unsqueeze(1).expand(-1, c, -1)).view(n, c, h, w)
    return gaussian_filter(shuffled, sigma).clamp_(0.0, 1.0)


@corruptions.register("glass_blur")
def glass_blur(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Frosted glass: blur, replace every pixel by a random neighbour in the script's serial sweep
    order (its swap is a copy, see ``_glass_schedule``; reproduced exactly, in parallel wavefronts),
    blur again.

    The shuffle moves whole pixels, so it cannot be scaled below one pixel: images smaller than
    224 px on the short side are glass-blurred at 224 (upsampled) and resized back, which is the
    damage a 224 px image of the same scene would take; larger images scale sigma and offsets."""
    check_images(images)
    sigma, reach, sweeps = pick(_GLASS_BLUR, severity)
    h, w = images.shape[-2:]
    if min(h, w) < REFERENCE_SIDE:
        big = resize(images, reference_shape(h, w))
        return resize(_glass(big, sigma, reach, sweeps, generator), (h, w)).clamp_(0.0, 1.0)
    scale = length_scale(images)
    return _glass(images, sigma * scale, round(reach * scale), sweeps, generator)


_MOTION_BLUR = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))  # make_imagenet_c.py motion_blur: (radius, sigma) at 224


def motion_taps(radius: float, sigma: float, angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ImageMagick's MotionBlurImage (effect.c), which the script calls through Wand: a one-sided
    Gaussian of ``2 * ceil(radius) + 1`` taps, ``exp(-i^2 / (2 sigma^2))`` normalised, at integer
    offsets ``round(i * (cos a, sin a))``. Returns the weights and the per-image x and y offsets."""
    import torch

    width = 2 * math.ceil(radius) + 1
    taps = torch.arange(width, dtype=torch.float64)
    weights = torch.exp(-(taps**2) / (2 * sigma**2))
    weights /= weights.sum()
    radians = torch.deg2rad(angles.double()).unsqueeze(1)
    # ceil(v - 0.5), as ImageMagick rounds the offsets
    dx = torch.ceil(taps * torch.cos(radians) - 0.5).long()
    dy = torch.ceil(taps * torch.sin(radians) - 0.5).long()
    return weights, dx, dy


def motion_smear(images: torch.Tensor, radius: float, sigma: float, angles: torch.Tensor) -> torch.Tensor:
    """Motion-blur image ``i`` along ``angles[i]`` degrees (lengths in these images' pixels), edges
    repeated beyond the border (ImageMagick's default virtual pixels).

    Each image's kernel is a line of at most ``2 ceil(radius) + 1`` taps, so it is applied as that
    many shifted multiply-adds on the padded image (several times faster than an FFT of the image)."""
    import torch
    import torch.nn.functional as F

    weights, dx, dy = motion_taps(radius, sigma, angles.cpu())
    reach = len(weights) - 1
    h, w = images.shape[-2:]
    padded = F.pad(images, (reach, reach, reach, reach), mode="replicate")
    out = torch.zeros_like(images)
    for i in range(images.shape[0]):
        taps: dict[tuple[int, int], float] = {}
        for weight, x, y in zip(weights.tolist(), dx[i].tolist(), dy[i].tolist()):
            taps[(y, x)] = taps.get((y, x), 0.0) + weight  # rounding can land two taps on one pixel
        for (y, x), weight in taps.items():
            out[i].add_(padded[i, :, reach + y : reach + y + h, reach + x : reach + x + w], alpha=weight)
    return out


@corruptions.register("motion_blur")
def motion_blur(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """A motion blur at a random angle in [-45, 45) degrees per image. Radius and sigma scale with
    the image side."""
    import torch

    check_images(images)
    radius, sigma = pick(_MOTION_BLUR, severity)
    scale = length_scale(images)
    angles = torch.rand(images.shape[0], generator=generator, device=generator.device) * 90 - 45
    return motion_smear(images, radius * scale, sigma * scale, angles).clamp_(0.0, 1.0)


_ZOOM_BLUR = (  # make_imagenet_c.py zoom_blur: np.arange(1, stop, step) zoom factors, averaged with the image
    (1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03),
)


@corruptions.register("zoom_blur")
def zoom_blur(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """The mean of the image and its centre zooms by each factor (relative, so no size scaling)."""
    import numpy as np

    check_images(images)
    stop, step = pick(_ZOOM_BLUR, severity)
    factors = np.arange(1, stop, step)  # numpy's arange, so the factor list is the script's exactly
    out = images.clone()
    for zoom in factors:
        out += clipped_zoom(images, float(zoom))
    return (out / (len(factors) + 1)).clamp_(0.0, 1.0)

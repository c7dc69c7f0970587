"""Batched filters the corruptions share: Gaussian and 2-D convolutions with the borders the
reference libraries use (scipy, OpenCV, ImageMagick), resizes and the script's clipped zoom.

Written on torch rather than imported from kornia or scipy because the corruptions need the
reference tools' exact border rules on whole N x C x H x W batches, on any device, in float64
where a test compares with scipy; each function names the rule it reproduces."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

Border = Literal["nearest", "reflect", "mirror"]


def _border_index(index: torch.Tensor, n: int, border: Border) -> torch.Tensor:
    """Map out-of-range indices into ``0..n-1`` by scipy.ndimage's border rule:
    'nearest' repeats the edge (a a | a b c), 'reflect' is half-sample symmetric (b a | a b c),
    'mirror' is whole-sample symmetric, OpenCV's reflect-101 (c b | a b c)."""
    import torch  # torch only when corrupting: validating a spec must not import it

    if border == "nearest":
        return index.clamp(0, n - 1)
    if n == 1:
        return torch.zeros_like(index)
    if border == "reflect":
        index = index.remainder(2 * n)
        return torch.where(index >= n, 2 * n - 1 - index, index)
    index = index.remainder(2 * n - 2)
    return torch.where(index >= n, 2 * n - 2 - index, index)


def correlation_matrix(kernel: torch.Tensor, n: int, border: Border = "nearest") -> torch.Tensor:
    """``n x n`` matrix correlating a signal of length ``n`` with the odd 1-D ``kernel``, the border folded in."""
    import torch

    radius = kernel.shape[0] // 2
    index = torch.arange(n)[:, None] + torch.arange(-radius, radius + 1)[None, :]
    matrix = torch.zeros(n, n, dtype=kernel.dtype)
    return matrix.scatter_add_(1, _border_index(index, n, border), kernel.expand(n, -1).contiguous())


def separable_blur(images: torch.Tensor, kernel: torch.Tensor, border: Border = "nearest") -> torch.Tensor:
    """Correlate every channel with ``kernel`` along H then W, as two batched matmuls with
    banded matrices (an order of magnitude faster on CPU than single-channel conv2d, and
    faster than shifted adds even for 5 taps at 224 px)."""
    import torch

    h, w = images.shape[-2:]
    rows = correlation_matrix(kernel, h, border).to(device=images.device, dtype=images.dtype)
    cols = correlation_matrix(kernel, w, border).to(device=images.device, dtype=images.dtype)
    return torch.matmul(torch.matmul(rows, images), cols.T)


def gaussian_kernel(sigma: float, radius: int) -> torch.Tensor:
    import torch

    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_filter(images: torch.Tensor, sigma: float, border: Border = "nearest", truncate: float = 4.0) -> torch.Tensor:
    """``scipy.ndimage.gaussian_filter`` over H and W (what ``skimage.filters.gaussian`` calls;
    its default border is 'nearest'); the kernel reaches ``int(truncate * sigma + 0.5)`` taps,
    at least one on each side."""
    radius = max(1, int(truncate * sigma + 0.5))
    return separable_blur(images, gaussian_kernel(sigma, radius), border)


def box_blur_3x3(images: torch.Tensor) -> torch.Tensor:
    """``cv2.blur(x, (3, 3))``: the 3 x 3 mean with OpenCV's default reflect-101 border."""
    import torch

    return correlate_3x3(images, torch.full((3, 3), 1 / 9))


def correlate_3x3(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate every channel with a 3 x 3 ``kernel`` (``cv2.filter2D``, reflect-101 border) as nine
    shifted multiply-adds, several times faster on CPU than a one-channel conv2d."""
    import torch
    import torch.nn.functional as F

    h, w = images.shape[-2:]
    padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
    out = torch.zeros_like(images)
    for (i, j), weight in zip(((i, j) for i in range(3) for j in range(3)), kernel.flatten().tolist()):
        if weight:
            out.add_(padded[..., i : i + h, j : j + w], alpha=weight)
    return out


def correlate_2d(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate every channel with an odd square 2-D ``kernel`` with OpenCV's default
    border (reflect-101; 'replicate' where the image is smaller than the kernel's reach).

    Kernels wider than 7 taps go by FFT on the padded image (a few times faster on
    CPU than conv2d for the 17-27 tap defocus kernels at 224 px); the crop keeps
    exactly the non-wrapped part. Small kernels go through conv2d, which keeps an
    identity kernel exact."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = images.shape
    size = kernel.shape[0]
    half = size // 2
    mode = "reflect" if half < min(h, w) else "replicate"
    padded = F.pad(images, (half, half, half, half), mode=mode)
    if size <= 7:
        weight = kernel.to(device=images.device, dtype=images.dtype).view(1, 1, size, size)
        return F.conv2d(padded.reshape(n * c, 1, h + 2 * half, w + 2 * half), weight).view(n, c, h, w)
    ph, pw = padded.shape[-2:]
    placed = torch.zeros(ph, pw, dtype=images.dtype, device=images.device)
    placed[:size, :size] = kernel.flip(0, 1).to(device=images.device, dtype=images.dtype)
    spectrum = torch.fft.rfft2(padded) * torch.fft.rfft2(placed)
    out = torch.fft.irfft2(spectrum, s=(ph, pw))
    return out[..., 2 * half : 2 * half + h, 2 * half : 2 * half + w]


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize (a no-op at the same size)."""
    import torch.nn.functional as F

    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)


def _zoom_axis(n: int, zoom: float, device: torch.device) -> torch.Tensor:
    """Source coordinates (in pixels) of the script's ``clipped_zoom`` along one axis: crop the centre
    ``ceil(n / zoom)`` pixels, scale by ``zoom`` with scipy's corner-aligned linear zoom (output side
    ``round(crop * zoom)``), and keep the centre ``n``."""
    import torch

    crop = math.ceil(n / zoom)
    top = (n - crop) // 2
    out = round(crop * zoom)
    trim = (out - n) // 2
    index = torch.arange(n, device=device, dtype=torch.float64) + trim
    return top + index * ((crop - 1) / (out - 1) if out > 1 else 0.0)


def clipped_zoom(images: torch.Tensor, zoom: float) -> torch.Tensor:
    """make_imagenet_c.py's ``clipped_zoom``: magnify the centre by ``zoom`` (> 1), same size out."""
    import torch
    import torch.nn.functional as F

    h, w = images.shape[-2:]
    rows, cols = _zoom_axis(h, zoom, images.device), _zoom_axis(w, zoom, images.device)
    # grid_sample's align_corners=True maps -1..1 onto pixel centres 0..n-1.
    grid_y = (2 * rows / max(h - 1, 1) - 1).to(images.dtype)
    grid_x = (2 * cols / max(w - 1, 1) - 1).to(images.dtype)
    grid = torch.stack(torch.meshgrid(grid_y, grid_x, indexing="ij")[::-1], dim=-1)
    grid = grid.unsqueeze(0).expand(images.shape[0], h, w, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)


def sample_at(images: torch.Tensor, x: torch.Tensor, y: torch.Tensor, border: Literal["mirror", "reflect"]) -> torch.Tensor:
    """Bilinear samples of every channel at pixel coordinates ``x``, ``y`` (N x H x W each).

    'mirror' reflects about the edge pixels' centres (OpenCV's reflect-101, as ``cv2.warpAffine``
    with ``BORDER_REFLECT_101``), 'reflect' about the image's outer edges (scipy's 'reflect', as
    ``map_coordinates(mode='reflect')``); torch's reflection padding does both, by ``align_corners``."""
    import torch
    import torch.nn.functional as F

    h, w = images.shape[-2:]
    if border == "mirror":
        gx, gy = 2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1
    else:
        gx, gy = (2 * x + 1) / w - 1, (2 * y + 1) / h - 1
    grid = torch.stack([gx, gy], dim=-1).to(images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=border == "mirror")

"""Weather corruptions: snow, frost, fog and spatter.

Snow, frost and spatter lay a layer (flakes, ice, drops) over the image. The script draws that
layer per pixel at 224 x 224, so its look depends on the pixel grid (noise zoomed 3x makes
3-pixel flakes); we draw it at the images' reference shape (short side 224) with the script's
constants and resize it to the images, so a 32 px image gets the snow a 224 px photo of the same
scene would show.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from robustgate.data.corruptions.base import (
    REFERENCE_SIDE, check_images, corruptions, luma, needs_grey_or_rgb, pick, reference_shape,
)
from robustgate.data.corruptions.blur import motion_smear
from robustgate.data.corruptions.filters import box_blur_3x3, clipped_zoom, correlate_3x3, gaussian_filter, resize
from robustgate.data.corruptions.frost_texture import BANK_SIZE, frost_textures

if TYPE_CHECKING:
    import torch

_FOG = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))  # make_imagenet_c.py fog: (strength, wibble decay)
_FRACTAL_SIDE = 256  # the script's plasma_fractal mapsize, cropped to 224


def plasma_fractal(n: int, decay: float, generator: torch.Generator, side: int = _FRACTAL_SIDE) -> torch.Tensor:
    """``n`` diamond-square height maps in [0, 1], as the script's ``plasma_fractal`` (in float64,
    including its ``wibble * uniform(-wibble, wibble)`` noise), drawn from ``generator``."""
    import torch  # torch, numpy and scipy only when corrupting: validating a spec must not import them

    maps = torch.zeros(n, side, side, dtype=torch.float64, device=generator.device)
    step, wibble = side, 100.0

    def wibbled_mean(total: torch.Tensor) -> torch.Tensor:
        noise = torch.rand(total.shape, generator=generator, dtype=torch.float64, device=generator.device) * 2 - 1
        return total / 4 + wibble * (wibble * noise)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0:side:step, 0:side:step]
        square = corners + torch.roll(corners, -1, dims=1)
        square = square + torch.roll(square, -1, dims=2)
        maps[:, half:side:step, half:side:step] = wibbled_mean(square)
        centres = maps[:, half:side:step, half:side:step]
        corners = maps[:, 0:side:step, 0:side:step]
        left = centres + torch.roll(centres, 1, dims=1) + corners + torch.roll(corners, -1, dims=2)
        maps[:, 0:side:step, half:side:step] = wibbled_mean(left)
        top = centres + torch.roll(centres, 1, dims=2) + corners + torch.roll(corners, -1, dims=1)
        maps[:, half:side:step, 0:side:step] = wibbled_mean(top)
        step //= 2
        wibble /= decay
    low = maps.flatten(1).amin(dim=1).view(-1, 1, 1)
    maps = maps - low
    return maps / maps.flatten(1).amax(dim=1).view(-1, 1, 1)


@corruptions.register("fog")
def fog(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Add a plasma-fractal haze and rescale by the image's maximum. The fractal is made at the
    script's 256 and cropped to its 224 (7/8 of the side), then resized to the image, so the haze
    has the same structure relative to the frame at any size (a new fractal per image, as in the
    script); images under 224 px use a smaller map with the same coarse octaves."""
    import torch.nn.functional as F

    check_images(images)
    strength, decay = pick(_FOG, severity)
    n, _, h, w = images.shape
    # Below 224 px the finest octaves of a 256 map fall under one output pixel: a smaller map
    # (the same coarse octaves, statistically) at the next power of two is as good and much faster.
    needed = math.ceil(_FRACTAL_SIDE * max(h, w) / REFERENCE_SIDE)
    side = min(_FRACTAL_SIDE, max(8, 1 << (needed - 1).bit_length()))
    crop = side * REFERENCE_SIDE // _FRACTAL_SIDE
    haze = plasma_fractal(n, decay, generator, side)[:, :crop, :crop].unsqueeze(1)
    haze = F.interpolate(haze, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    haze = haze.to(device=images.device, dtype=images.dtype)
    peak = images.flatten(1).amax(dim=1).view(-1, 1, 1, 1)
    return ((images + strength * haze) * peak / (peak + strength)).clamp_(0.0, 1.0)


_SNOW = (  # make_imagenet_c.py snow: (flake mean, flake std, zoom, threshold, blur radius, blur sigma, image kept)
    (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
    (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
    (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
    (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
    (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
)


@corruptions.register("snow")
def snow(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Falling snow: Gaussian noise zoomed into flakes, thresholded, motion-blurred at a random angle
    in [-135, -45) degrees and added twice (the second copy rotated 180 degrees) to the image
    brightened towards white as a snowy day is. The flake layer is drawn at the reference shape."""
    import torch

    check_images(images)
    needs_grey_or_rgb(images, "snow")
    mean, std, zoom, threshold, radius, sigma, kept = pick(_SNOW, severity)
    n, _, h, w = images.shape
    flakes = torch.randn((n, 1, *reference_shape(h, w)), generator=generator, device=generator.device) * std + mean
    flakes = clipped_zoom(flakes.to(images.device), zoom)
    flakes = torch.where(flakes < threshold, 0.0, flakes).clamp_(0.0, 1.0)
    flakes = flakes.mul_(255).floor_().div_(255)  # the script saves the layer as 8-bit PNG for ImageMagick
    angles = torch.rand(n, generator=generator, device=generator.device) * 90 - 135
    flakes = motion_smear(flakes, radius, sigma, angles).mul_(255).round_().div_(255)
    flakes = resize(flakes, (h, w)).to(images.dtype)
    whitened = torch.maximum(images, luma(images) * 1.5 + 0.5)
    out = kept * images + (1 - kept) * whitened
    return (out + flakes + flakes.flip(-2, -1)).clamp_(0.0, 1.0)


_FROST = ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))  # make_imagenet_c.py frost: (image, frost) weights


@corruptions.register("frost")
def frost(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """``clip(a * x + b * frost)`` with a random crop of one of five frost textures. The textures are
    procedural stand-ins for the script's photographs (see :mod:`.frost_texture`); the crop has the
    reference shape and is resized to the images."""
    import torch

    check_images(images)
    needs_grey_or_rgb(images, "frost")
    kept, amount = pick(_FROST, severity)
    n, c, h, w = images.shape
    rh, rw = reference_shape(h, w)
    # textures with room for the crop to move (the script's photographs are larger than 224 px too)
    bank = frost_textures(max(384, 64 * math.ceil((max(rh, rw) + 64) / 64))).to(images.device)
    side = bank.shape[-1]
    which = torch.randint(0, BANK_SIZE, (n,), generator=generator, device=generator.device).tolist()
    top = torch.randint(0, side - rh, (n,), generator=generator, device=generator.device).tolist()
    left = torch.randint(0, side - rw, (n,), generator=generator, device=generator.device).tolist()
    crops = torch.stack([bank[i, :, y : y + rh, x : x + rw] for i, y, x in zip(which, top, left)])
    layer = resize(crops, (h, w)).to(images.dtype)
    if c == 1:
        layer = luma(layer)
    return (kept * images + amount * layer).clamp_(0.0, 1.0)


_SPATTER = (  # make_imagenet_c.py spatter: (liquid mean, std, blur sigma, threshold, strength, mud?)
    (0.65, 0.3, 4, 0.69, 0.6, 0),
    (0.65, 0.3, 3, 0.68, 0.6, 0),
    (0.65, 0.3, 2, 0.68, 0.5, 0),
    (0.65, 0.3, 1, 0.65, 1.5, 1),
    (0.67, 0.4, 1, 0.65, 1.5, 1),
)
_WATER = (175 / 255, 238 / 255, 238 / 255)  # pale turquoise, RGB
_MUD = (63 / 255, 42 / 255, 20 / 255)  # mud brown, RGB
_SHEEN_REACH = 20  # the script's distance threshold (cv2.THRESH_TRUNC at 20 px)
_EMBOSS = ((-2.0, -1.0, 0.0), (-1.0, 1.0, 1.0), (0.0, 1.0, 2.0))  # the script's cv2.filter2D kernel


@corruptions.register("spatter")
def spatter(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Drops on the lens: smoothed noise thresholded into blobs. Severities 1-3 add shiny water drops
    (pale turquoise, brightest near the drop's rim), 4-5 cover the image with opaque mud. The drop
    layer is drawn at the reference shape and resized to the images."""
    import torch

    check_images(images)
    needs_grey_or_rgb(images, "spatter")
    mean, std, sigma, threshold, strength, mud = pick(_SPATTER, severity)
    n, c, h, w = images.shape
    liquid = torch.randn((n, 1, *reference_shape(h, w)), generator=generator, device=generator.device)
    liquid = gaussian_filter(liquid.to(images.device) * std + mean, sigma)
    liquid = torch.where(liquid < threshold, 0.0, liquid)
    colour = torch.tensor(_MUD if mud else _WATER, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    if c == 1:
        colour = luma(colour)
    if mud:
        cover = gaussian_filter((liquid > threshold).float(), strength)
        cover = resize(torch.where(cover < 0.8, 0.0, cover), (h, w)).to(images.dtype)
        return (images * (1 - cover) + colour * cover).clamp_(0.0, 1.0)
    sheen = resize(_water_sheen(liquid) * strength, (h, w)).to(images.dtype)
    return (images + sheen * colour).clamp_(0.0, 1.0)


def _water_sheen(liquid: torch.Tensor) -> torch.Tensor:
    """The script's OpenCV chain that shades each drop from its rim inwards: the distance to the
    drops' outlines (capped at 20 px), 3x3 mean, per-image histogram equalisation, an emboss filter,
    3x3 mean, times the liquid, scaled to peak 1 per image.

    Two departures: the outlines come from the thresholded blobs directly, as each blob's inner
    rim, where the script runs ``cv2.Canny(50, 150)`` on them (inside a blob the smoothed noise
    changes by a few grey levels per pixel, while a rim steps from 0 to at least 165, so Canny finds
    the rims and nothing else, one pixel to either side of the step); and the distance is the
    exact Euclidean one, which OpenCV's 5x5 mask approximates within 2%.
    Float32 throughout: the chain rounds to whole grey levels at every step, as the script's uint8s do."""
    import torch
    import torch.nn.functional as F

    inside = liquid > 0
    outline = inside & ~(-F.max_pool2d(-inside.float(), 3, stride=1, padding=1) > 0.5)  # a 3x3 neighbour is dry
    distance = _distance_to(outline, _SHEEN_REACH)
    shade = box_blur_3x3(distance).floor_()  # .astype(np.uint8) truncates
    shade = _equalize_hist(shade)
    shade = correlate_3x3(shade, torch.tensor(_EMBOSS)).round_().clamp_(0, 255)  # CV_8U saturates
    shade = box_blur_3x3(shade).round_()  # cv2.blur on uint8 rounds
    sheen = liquid * shade
    peak = sheen.flatten(1).amax(dim=1).view(-1, 1, 1, 1)
    return torch.where(peak > 0, sheen / peak.clamp_min(1e-12), torch.zeros_like(sheen))


def _distance_to(targets: torch.Tensor, cap: int) -> torch.Tensor:
    """Euclidean distance from every pixel to the nearest ``True`` of ``targets`` (N x 1 x H x W),
    capped at ``cap``, by scipy's exact distance transform. The images are stacked into one array
    with ``cap + 1`` empty rows between them: no distance across a gap can fall under the cap."""
    import numpy as np
    import scipy.ndimage as ndi
    import torch

    n, _, h, w = targets.shape
    if not targets.any():  # scipy measures from outside the array when there is nothing to measure to
        return torch.full(targets.shape, float(cap), device=targets.device)
    stacked = np.ones((n, h + cap + 1, w), dtype=bool)
    stacked[:, :h] = ~targets[:, 0].cpu().numpy()
    distance = ndi.distance_transform_edt(stacked.reshape(-1, w)).reshape(n, h + cap + 1, w)[:, :h]
    return torch.from_numpy(np.minimum(distance, cap)).to(device=targets.device, dtype=torch.float32).unsqueeze(1)


def _equalize_hist(shade: torch.Tensor) -> torch.Tensor:
    """``cv2.equalizeHist`` per image on integer values 0..255 (N x 1 x H x W floats)."""
    import torch

    n = shade.shape[0]
    levels = shade.flatten(1).long()
    hist = torch.zeros(n, 256, dtype=torch.float64, device=shade.device).scatter_add_(
        1, levels, torch.ones_like(levels, dtype=torch.float64)
    )
    cdf = hist.cumsum(1)
    total = cdf[:, -1:]
    first = torch.where(hist > 0, cdf, torch.full_like(cdf, math.inf)).amin(1, keepdim=True)  # hist at the lowest level
    lut = ((cdf - first).clamp_min(0) * (255.0 / (total - first).clamp_min(1))).round_().clamp_(0, 255)
    flat = (total == first).squeeze(1)  # one level only: OpenCV keeps it
    out = lut.gather(1, levels).view_as(shade).to(shade.dtype)
    return torch.where(flat.view(-1, 1, 1, 1), shade, out)

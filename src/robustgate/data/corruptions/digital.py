"""Digital corruptions: contrast, brightness, saturate, JPEG, pixelate and the elastic transform."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from robustgate.data.corruptions.base import (
    check_images, corruptions, in_rgb, length_scale, needs_grey_or_rgb, on_uint8, pick, reference_shape, uniform,
)
from robustgate.data.corruptions.filters import gaussian_filter, resize, sample_at

if TYPE_CHECKING:
    import numpy as np
    import torch

_CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)  # make_imagenet_c.py contrast: factor towards the mean


@corruptions.register("contrast")
def contrast(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Contrast reduction towards each image's per-channel mean: ``(x - m) * c + m``.
    Per channel as in the original, so grey images need no special case."""
    check_images(images)
    c = pick(_CONTRAST, severity)
    means = images.mean(dim=(-2, -1), keepdim=True)
    return images.sub(means).mul_(c).add_(means).clamp_(0.0, 1.0)


_BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)  # make_imagenet_c.py brightness: added to HSV value


@corruptions.register("brightness")
def brightness(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """``V <- clip(V + c)`` in HSV, hue and saturation kept.

    For fixed hue and saturation, RGB is linear in V, so the HSV round trip is
    ``rgb * V'/V`` (and ``V'`` in every channel for black, where S = 0)."""
    import torch  # torch, numpy and PIL only when corrupting: validating a spec must not import them

    check_images(images)
    c = pick(_BRIGHTNESS, severity)

    def fn(rgb: torch.Tensor) -> torch.Tensor:
        v = rgb.amax(dim=1, keepdim=True)
        v_new = (v + c).clamp_(0.0, 1.0)
        return torch.where(v > 0, rgb * (v_new / v.clamp_min(1e-12)), v_new)

    return in_rgb(images, "brightness", fn).clamp_(0.0, 1.0)


# make_imagenet_c.py saturate: (factor, offset) on HSV saturation; 1-2 desaturate, 3-5 oversaturate
_SATURATE = ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2))


@corruptions.register("saturate")
def saturate(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """``S <- clip(S * a + b)`` in HSV, hue and value kept.

    With V = max, m = min and S = (V - m) / V, a channel is ``V - S*V*w`` where
    ``w = (V - x) / (V - m)`` depends on hue only; so the new channel is
    ``V - S'*V*w``. Greys (V = m) have hue 0 in skimage's HSV, i.e. ``w = (0, 1, 1)``."""
    import torch

    check_images(images)
    a, b = pick(_SATURATE, severity)

    def fn(rgb: torch.Tensor) -> torch.Tensor:
        v = rgb.amax(dim=1, keepdim=True)
        delta = v - rgb.amin(dim=1, keepdim=True)
        s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
        s_new = (s * a + b).clamp_(0.0, 1.0)
        grey_w = torch.tensor((0.0, 1.0, 1.0), device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
        w = torch.where(delta > 0, (v - rgb) / delta.clamp_min(1e-12), grey_w)
        return v - s_new * v * w

    return in_rgb(images, "saturate", fn).clamp_(0.0, 1.0)


_JPEG_QUALITY = (25, 18, 15, 10, 7)  # make_imagenet_c.py jpeg_compression: PIL quality


@corruptions.register("jpeg_compression")
def jpeg_compression(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """JPEG round trip at the ImageNet-C quality, through Pillow (libjpeg defaults, 4:2:0)
    as the original; images are put on the uint8 grid first, as the original's PIL images were."""
    from robustgate.data.imageset import to_uint8

    check_images(images)
    decoded = jpeg_compression_uint8(to_uint8(images), severity, generator)
    return decoded.to(device=images.device, dtype=images.dtype).div_(255.0)


def jpeg_compression_uint8(pixels: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """:func:`jpeg_compression` on uint8 images, as Pillow takes and gives them (corrupt() calls it directly)."""
    import numpy as np
    import torch
    from PIL import Image

    needs_grey_or_rgb(pixels, "jpeg_compression")
    quality = pick(_JPEG_QUALITY, severity)
    images = _channels_last(pixels)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        out[i] = np.asarray(Image.open(buffer)).reshape(image.shape)
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(pixels.device)


def _channels_last(pixels: torch.Tensor) -> np.ndarray:
    """N x H x W x C uint8 images, contiguous, as Pillow takes them: one torch transpose of the whole batch,
    where Pillow would copy each image of a permuted N x C x H x W view on its own."""
    return pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy()


on_uint8["jpeg_compression"] = jpeg_compression_uint8


_PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)  # make_imagenet_c.py pixelate: side fraction kept


@corruptions.register("pixelate")
def pixelate(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """BOX-downsample each side to ``int(side * c)`` pixels and BOX-upsample back, through Pillow as
    the original (the original's ``int(224 * c)`` with 224 read as the image's own side); images are
    put on the uint8 grid first, as the original's PIL images were."""
    from robustgate.data.imageset import to_uint8

    check_images(images)
    return pixelate_uint8(to_uint8(images), severity, generator).to(device=images.device, dtype=images.dtype).div_(255.0)


def pixelate_uint8(pixels: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """:func:`pixelate` on uint8 images. Pillow's own resizes give the original's pixels exactly, its rounding
    between the passes included, and run 3-4x faster at 224 px than the same box sums in float torch did.
    An RGB image is resized as one; other channel counts one 8-bit band at a time (Pillow resamples each band
    alone in any mode, so the pixels are the same)."""
    import numpy as np
    import torch
    from PIL import Image

    c = pick(_PIXELATE, severity)
    h, w = pixels.shape[-2:]
    small = (max(1, int(w * c)), max(1, int(h * c)))

    def resized(image: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(image).resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BOX))

    if pixels.shape[1] == 3:
        images = _channels_last(pixels)
        out = np.empty_like(images)
        for i, image in enumerate(images):
            out[i] = resized(image)
        return torch.from_numpy(out).permute(0, 3, 1, 2).to(pixels.device)
    bands = pixels.contiguous().cpu().numpy()
    out = np.empty_like(bands)
    for i, image in enumerate(bands):
        for k, band in enumerate(image):
            out[i, k] = resized(band)
    return torch.from_numpy(out).to(pixels.device)


on_uint8["pixelate"] = pixelate_uint8


_ELASTIC = (  # make_imagenet_c.py elastic_transform: (alpha, sigma, affine jitter) in pixels at 224 x 224;
    # the script's "244 should have been 224, but ultimately nothing is incorrect" is kept as published
    (244 * 2, 244 * 0.7, 244 * 0.1),
    (244 * 2, 244 * 0.08, 244 * 0.2),
    (244 * 0.05, 244 * 0.01, 244 * 0.02),
    (244 * 0.07, 244 * 0.01, 244 * 0.02),
    (244 * 0.12, 244 * 0.01, 244 * 0.02),
)


def _jittered_affine(n: int, h: int, w: int, jitter: float, generator: torch.Generator) -> torch.Tensor:
    """``n x 2 x 3`` inverse affine maps (output pixel -> source pixel) of the script's random affine:
    three points around the centre each moved by up to ``jitter`` px (``cv2.getAffineTransform``),
    inverted as ``cv2.warpAffine`` does."""
    import torch

    cx, cy, side = w // 2, h // 2, min(h, w) // 3
    src = torch.tensor([[cx + side, cy + side], [cx + side, cy - side], [cx - side, cy - side]], dtype=torch.float64)
    dst = src + uniform((n, 3, 2), -jitter, jitter, generator, src)
    forward = torch.linalg.solve(torch.cat([src, torch.ones(3, 1, dtype=torch.float64)], 1), dst).mT  # n x 2 x 3
    linear_inv = torch.linalg.inv(forward[..., :2])
    return torch.cat([linear_inv, -(linear_inv @ forward[..., 2:])], dim=2)


@corruptions.register("elastic_transform")
def elastic_transform(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """A small random affine warp (reflect-101 border), then a smooth random displacement field:
    uniform noise Gaussian-filtered at ``sigma`` (scipy 'reflect', truncate 3) times ``alpha``,
    sampled bilinearly with scipy's 'reflect' border, as ``map_coordinates(order=1)``. The jitter
    scales with the image side; the field is made at the reference shape and resized."""
    import torch

    check_images(images)
    alpha, sigma, jitter = pick(_ELASTIC, severity)
    scale = length_scale(images)
    n, _, h, w = images.shape
    inverse = _jittered_affine(n, h, w, jitter * scale, generator).to(images.device)
    ys, xs = torch.meshgrid(
        torch.arange(h, device=images.device, dtype=torch.float64),
        torch.arange(w, device=images.device, dtype=torch.float64),
        indexing="ij",
    )
    src_x = inverse[:, 0, 0, None, None] * xs + inverse[:, 0, 1, None, None] * ys + inverse[:, 0, 2, None, None]
    src_y = inverse[:, 1, 0, None, None] * xs + inverse[:, 1, 1, None, None] * ys + inverse[:, 1, 2, None, None]
    warped = sample_at(images, src_x, src_y, "mirror")
    # The field is drawn at the reference shape: filtered per-pixel noise gets stronger as sigma shrinks
    # in pixels, so a field drawn at 32 px would shake a 32 px image 8x harder than 224 px photos.
    noise = uniform((n, 2, *reference_shape(h, w)), -1.0, 1.0, generator, images).float()  # dx's field, then dy's
    shift = gaussian_filter(noise, sigma, border="reflect", truncate=3.0) * alpha  # float32, as the script casts it
    shift = resize(shift, (h, w)) * scale
    return sample_at(warped, xs + shift[:, 0], ys + shift[:, 1], "reflect").clamp_(0.0, 1.0)

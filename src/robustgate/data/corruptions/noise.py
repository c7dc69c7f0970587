"""Noise corruptions: additive, Poisson, salt-and-pepper and multiplicative, drawn from the generator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustgate.data.corruptions.base import check_images, corruptions, pick

if TYPE_CHECKING:
    import torch

_GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)  # make_imagenet_c.py gaussian_noise: std


@corruptions.register("gaussian_noise")
def gaussian_noise(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Additive white Gaussian noise, i.i.d. per pixel and channel: ``clip(x + N(0, c^2))``."""
    import torch  # torch only when corrupting: validating a spec must not import it

    check_images(images)
    c = pick(_GAUSSIAN_NOISE, severity)
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return images.add(noise, alpha=c).clamp_(0.0, 1.0)


_SHOT_NOISE = (60, 25, 12, 5, 3)  # make_imagenet_c.py shot_noise: photons per unit intensity


@corruptions.register("shot_noise")
def shot_noise(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Poisson (photon) noise: ``clip(Poisson(c * x) / c)``."""
    import torch

    check_images(images)
    c = pick(_SHOT_NOISE, severity)
    return torch.poisson(images * c, generator=generator).div_(c).clamp_(0.0, 1.0)


_IMPULSE_NOISE = (0.03, 0.06, 0.09, 0.17, 0.27)  # make_imagenet_c.py impulse_noise: s&p amount


@corruptions.register("impulse_noise")
def impulse_noise(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Salt-and-pepper noise as ``skimage.util.random_noise(mode='s&p', amount=c)``:
    each pixel channel independently becomes 1 with probability c/2, 0 with probability c/2."""
    import torch

    check_images(images)
    c = pick(_IMPULSE_NOISE, severity)
    u = torch.rand(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    # One uniform decides both: u < c flips the value, and given a flip u < c/2 (probability 1/2) salts it.
    salt = (u < c / 2).to(images.dtype)
    return torch.where(u < c, salt, images).clamp_(0.0, 1.0)


_SPECKLE_NOISE = (0.15, 0.2, 0.35, 0.45, 0.6)  # make_imagenet_c.py speckle_noise: std


@corruptions.register("speckle_noise")
def speckle_noise(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Multiplicative Gaussian noise: ``clip(x + x * N(0, c^2))``."""
    import torch

    check_images(images)
    c = pick(_SPECKLE_NOISE, severity)
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return images.addcmul(images, noise, value=c).clamp_(0.0, 1.0)

"""Image corruptions after the ImageNet-C protocol, batched in torch.

One module per family (:mod:`.noise`, :mod:`.blur`, :mod:`.weather`, :mod:`.digital`); each
corruption is one registered function there. :data:`SUITES` names the protocol's sets.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations" (ICLR 2019). The severity constants below are
the published ones, copied from ``ImageNet-C/create_c/make_imagenet_c.py`` in
github.com/hendrycks/robustness (cited as ``make_imagenet_c.py`` next to each
table). The functions re-implement that script in torch instead of calling the
``imagecorruptions`` package, which is broken on numpy 2.

Every corruption has the signature of :data:`Corruption`: float
``N x C x H x W`` images in ``[0, 1]``, a severity in ``1..5`` and a
``torch.Generator`` (the noises, glass, motion, snow, frost, fog, spatter and
elastic draw from it; the others ignore it and are deterministic). It returns
a new float tensor of the same shape in ``[0, 1]``. Any ``C`` works for the
per-channel corruptions; the colour ones (``brightness``, ``saturate``,
``jpeg_compression``, ``snow``, ``frost``, ``spatter``) need ``C`` in ``{1, 3}``.
A corruption that works on the uint8 grid itself registers a uint8 version too
(``base.on_uint8``: ``jpeg_compression``, a Pillow round trip), which
:func:`corrupt` calls on the set's pixels with no float round trip; the others
average or add, so they need wider numbers than uint8 whatever the route
(``pixelate``'s box averages included, which Pillow keeps in fixed point).

Image size. ImageNet-C was made at 224 x 224. Length-scale constants (blur
sigmas, defocus radii, motion and elastic lengths) are scaled by
``min(H, W) / 224`` so that a 32 x 32 image gets the blur a 224 x 224 image of
the same scene would get, not a seven-times-stronger one. Weather layers (snow
flakes, frost, spatter drops) are drawn at the reference shape (short side
224) and resized (see :mod:`.weather`); ``glass_blur`` shuffles whole pixels,
so images under 224 px are glass-blurred at 224 and resized back. ``pixelate``
resizes to the fraction ``c`` of each side, which is the same rule (``int(224 * c)`` in the original). The only
floors are structural: a blur kernel has at least 3 taps and a pixelated side
at least 1 pixel. Consequence: at 32 x 32 the mildest blurs vanish. Severity 1
is sigma 0.14 px for ``gaussian_blur`` and a disk of radius 0.43 px (inside
one pixel) for ``defocus_blur``, both the identity in float32, and severity 2
changes pixels by well under one grey level on average. CIFAR-10-C
(``make_cifar_c.py``) chose stronger, non-proportional constants for 32 x 32
instead; we keep the ImageNet-C ones, scaled.

Differences from the reference script, all deliberate:

* ``defocus_blur`` uses an area-coverage (anti-aliased) disk instead of the
  script's integer-grid disk softened by a tiny Gaussian; the script's comment
  says its Gaussian is there to "supersample disk to antialias", which the
  coverage disk does exactly and which also keeps sub-pixel radii meaningful
  after scaling. The script's alias Gaussian is still applied (scaled), but to
  a kernel with room around it: the script blurs its disk inside a grid the
  disk touches at radii 8 and 10, with OpenCV's reflecting border, so its
  severity 4 and 5 kernels sum to 1.013 and 1.011 and brighten the image by
  about 1%; ours sum to 1. Against the script's kernel renormalised to 1, the
  damage differs by at most ~2% (severity 2) at 224 x 224.
* ``jpeg_compression`` round-trips through Pillow, as the script does.
  ``torchvision.io.encode_jpeg`` gives byte-identical files here but is
  deprecated since torchvision 0.29 (it warns on every call) and is about 20x
  slower on CPU.
* Results land on the uint8 grid by rounding (:func:`to_uint8`); the script
  truncated with ``np.uint8`` and re-saved every image as JPEG quality 85,
  which we do not.

Grey (1-channel) images: ``contrast`` is per channel in the original (the mean
is taken over H and W only), so it applies unchanged. The HSV corruptions
``brightness`` and ``saturate`` treat a grey image as the RGB image with three
equal channels, corrupt that, and read the result back with ITU-R 601-2 luma
(what a grey camera would see of the corrupted scene). ``brightness`` then is
exactly ``clip(x + c)``; ``saturate`` leaves greys unchanged at severities 1-3
and darkens them by 7% / 14% at severities 4 / 5, whose additive saturation
term tints greys red (hue 0) in the original.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustgate.data.corruptions.base import Corruption, check_severity, corruptions, on_uint8
from robustgate.data.corruptions import noise as _noise  # noqa: F401  (registers the noises)
from robustgate.data.corruptions import blur as _blur  # noqa: F401
from robustgate.data.corruptions import weather as _weather  # noqa: F401
from robustgate.data.corruptions import digital as _digital  # noqa: F401
from robustgate.data.corruptions.weather import plasma_fractal

if TYPE_CHECKING:
    from robustgate.data.imageset import ImageSet
    import torch

__all__ = ["COMMON", "EXTRA", "SUITES", "Corruption", "corrupt", "corruptions", "plasma_fractal"]

# The protocol's sets, in its order (noise, blur, weather, digital): the 15 that mCE averages,
# and the 4 it held out for validation (make_imagenet_c.py's listing).
COMMON = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SUITES = {"common": COMMON, "extra": EXTRA, "all": COMMON + EXTRA}

_CHUNK = 256  # images per batch in corrupt(): bounds float memory on large sets


def corrupt(images: ImageSet, name: str, severity: int, seed: int, device: torch.device | str = "cpu") -> ImageSet:
    """Apply corruption ``name`` at ``severity`` (1..5) to every image of ``images``.

    Seeded: the same set, name, severity and seed give the same pixels. Returns a
    new :class:`ImageSet` on the uint8 grid with the same labels and classes.
    An unknown ``name`` raises the registry's ``RegistryError`` (with a "did you
    mean"); a severity outside 1..5 raises :class:`DataError`.

    ``device``: where the arithmetic runs (a GPU is many times faster at 224 px); the
    random draws come from a generator on that device, so a CUDA device gives other,
    equally seeded pixels than the CPU. The set returned is on the CPU, as sets are.
    """
    import torch  # torch only when corrupting: validating a spec must not import it

    from robustgate.data.imageset import ImageSet, to_uint8

    fn = corruptions.get(name)
    check_severity(severity)
    pixels = images.images
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    out = torch.empty_like(pixels)
    native = on_uint8.get(name)  # a corruption that works on the uint8 grid skips the float round trip
    for start in range(0, pixels.shape[0], _CHUNK):
        chunk = pixels[start : start + _CHUNK].to(device)
        if native is not None:
            out[start : start + _CHUNK] = native(chunk, severity, generator).cpu()
        else:
            out[start : start + _CHUNK] = to_uint8(fn(chunk.float().div_(255.0), severity, generator)).cpu()
    return ImageSet(out, images.labels, images.classes)

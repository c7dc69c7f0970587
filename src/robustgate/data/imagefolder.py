"""ImageFolder trees (``root/<class>/<image>``) loaded the way torchvision's ``ImageFolder`` sees them.

Class folders are every sub-folder, in sorted order (so label ``i`` means the same class as in a model
trained with ``torchvision.datasets.ImageFolder``, whose ``find_classes`` lists them so), and the files
that count as images come from torchvision's own scanning code; only the decoding differs:
``torchvision.io.decode_image`` instead of PIL, with PIL as the fallback for the formats ``decode_image``
cannot read (BMP, TIFF, PPM/PGM). Listing the classes imports nothing heavy (``robustgate validate``
counts them); torch and torchvision are imported when images are read.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from robustgate.errors import DataError

if TYPE_CHECKING:
    import torch

    from robustgate.data.imageset import ImageSet

PATH_HINT = (
    "check the path; ${VAR} references in a spec are expanded from the environment, "
    "and a relative path resolves against the directory of the spec file, not the working directory"
)
# torchvision's C++ errors read "decode_jpeg, /build/path/decode_jpeg.cpp:171, Image is incomplete"; keep the reason.
_CPP_PREFIX = re.compile(r"^\w+, \S+:\d+, ")
_TV_DEPRECATION = "The image decoding and encoding capabilities of TorchVision are deprecated"


def load_imagefolder(root: Path, size: tuple[int, int], channels: int = 3) -> ImageSet:
    """An ImageFolder tree (``root/<class>/<image>``) as an :class:`ImageSet` at ``size`` with ``channels`` channels.

    Labels index the sorted class folder names, exactly as torchvision's
    ``ImageFolder`` assigns them; every image is resized as it is decoded, so
    images of any size may be mixed.
    """
    root = check_folder(root, hint=PATH_HINT)
    classes = class_folders(root)
    samples = scan_samples(root, {name: label for label, name in enumerate(classes)})
    return decode_samples(samples, classes, size, channels)


def class_folders(root: Path) -> tuple[str, ...]:
    """The class folders of an ImageFolder tree: its sub-folders' names, sorted (label ``i`` is the ``i``-th);
    a :class:`DataError` when it has none or cannot be read."""
    try:
        with os.scandir(root) as entries:
            classes = tuple(sorted(entry.name for entry in entries if entry.is_dir()))
    except OSError as err:
        raise DataError(f"cannot read dataset folder '{root}': {err.strerror or err}", hint=PATH_HINT) from None
    if not classes:
        raise DataError(
            f"dataset folder '{root}' has no class folders",
            hint="an ImageFolder tree holds one sub-folder per class, named after the class, "
            "with that class's images inside (root/<class>/<image>)",
        )
    return classes


def check_folder(path: Path | str, *, hint: str, what: str = "dataset folder") -> Path:
    """``path`` as a ``Path``, or a :class:`DataError` when it is missing or not a directory."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{what} '{path}' does not exist", hint=hint)
    if not path.is_dir():
        raise DataError(f"{what} '{path}' is not a directory", hint=hint)
    return path


def scan_samples(root: Path, class_to_idx: Mapping[str, int]) -> list[tuple[str, int]]:
    """torchvision's ``(path, label)`` list for ``root``; a :class:`DataError` names any class folder with no images."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    try:
        samples = make_dataset(root, class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    except OSError as err:
        raise DataError(f"cannot read dataset folder '{root}': {err.strerror or err}", hint=PATH_HINT) from None
    found = {label for _, label in samples}
    empty = [name for name, label in class_to_idx.items() if label not in found]
    if empty:
        listed = ", ".join(sorted(empty))
        noun = "folder has" if len(empty) == 1 else "folders have"
        raise DataError(
            f"{len(empty)} class {noun} no images under '{root}': {listed}",
            hint="put at least one image in every class folder or remove the empty ones; "
            f"files count as images by extension ({_supported()})",
        )
    return samples


def decode_samples(
    samples: Sequence[tuple[str, int]], classes: Sequence[str], size: tuple[int, int], channels: int
) -> ImageSet:
    """Decode every ``(path, label)`` sample, resize it to ``size`` and stack them into an :class:`ImageSet`."""
    import torch

    from robustgate.data.imageset import ImageSet
    from robustgate.data.resize import to_model_geometry

    if channels not in (1, 3):
        raise DataError(
            f"images can be loaded with 1 or 3 channels, not {channels}",
            hint="set the model's input channels to 3 (RGB) or 1 (greyscale)",
        )
    height, width = size
    images = torch.empty((len(samples), channels, height, width), dtype=torch.uint8)
    labels = torch.empty(len(samples), dtype=torch.int64)
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its decoders (for TorchCodec) with a warning on every call, one per image here.
        warnings.filterwarnings("ignore", message=_TV_DEPRECATION, category=DeprecationWarning)
        for i, (path, label) in enumerate(samples):
            image = _decode(path, channels)
            images[i] = to_model_geometry(image.unsqueeze(0), (height, width), channels)[0]
            labels[i] = label
    return ImageSet(images, labels, tuple(classes))


def _decode(path: str, channels: int) -> torch.Tensor:
    """One image file as uint8 ``C x H x W`` with ``channels`` channels, or a :class:`DataError` naming the file."""
    import torch
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms.v2 import functional as TF

    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    try:
        image = decode_image(path, mode=mode)
    except RuntimeError as err:
        reason = _CPP_PREFIX.sub("", str(err)).strip()
        if reason.startswith("Unsupported image file"):
            reason = "its contents are not in any image format robustgate can read"
        image = _decode_with_pil(path, channels, reason)
    if image.dtype != torch.uint8:  # 16-bit PNGs decode to uint16
        image = TF.to_dtype(image, torch.uint8, scale=True)
    return image


def _decode_with_pil(path: str, channels: int, reason: str) -> torch.Tensor:
    """Decode with PIL, as torchvision's ``ImageFolder`` does: the ``IMG_EXTENSIONS`` formats that
    ``decode_image`` cannot read (BMP, TIFF, PPM/PGM) land here."""
    import numpy as np
    import torch
    from PIL import Image

    try:
        with Image.open(path) as pil:
            array = np.asarray(pil.convert("RGB" if channels == 3 else "L"))
    except (OSError, ValueError, Image.DecompressionBombError):
        raise DataError(
            f"cannot decode image file '{path}': {reason}",
            hint="the file is corrupt, truncated or not an image; replace or delete it "
            "(decodable formats: JPEG, PNG, WebP, BMP, TIFF, PPM/PGM; "
            f"files count as images by extension: {_supported()})",
        ) from None
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def _supported() -> str:
    """The file extensions that count as images (torchvision's ``IMG_EXTENSIONS``), for messages."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return ", ".join(IMG_EXTENSIONS)

"""The built-in default dataset: 8x8 digits in two domains, with nothing to download.

``handwritten`` is the UCI handwritten digits that scikit-learn ships;
``printed`` is the same ten digits rendered from the TrueType faces that
matplotlib ships, put through the UCI preprocessing so both domains share
one grid. A model trained on one domain and tested on the other sees a real
domain shift (typeface strokes, serifs, slanted and mono faces).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from robustgate.errors import DataError

DOMAINS = ("handwritten", "printed")
CLASSES = tuple(str(digit) for digit in range(10))  # the labels of both domains

# Faces whose cmap maps '0'..'9' to real digit glyphs. Left out: symbol-only
# faces (cmex10, cmsy10, STIXSize*, STIXNonUni*, DejaVu*Display), cmmi10
# (old-style figures with descenders) and LastResortHE (placeholder boxes).
_FACES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
    "cmr10.ttf",
    "cmb10.ttf",
    "cmss10.ttf",
    "cmti10.ttf",
    "cmtt10.ttf",
)
_PER_CLASS = 50
_SEED = 20240123  # fixed: the printed set is part of the product, not of a user's run
_RENDER_SIZE = 96  # font size in px of the supersampled drawing, before reduction to 32x32
_BITMAP = 32
_BLOCK = 4
_INK_LUT = [0] * 128 + [255] * 128  # anti-aliased fringe below half grey is not ink

# Count c of on-pixels in a 4x4 block (0..16) -> uint8 pixel round(c * 255 / 16).
_LEVELS = torch.tensor([round(count * 255 / 16) for count in range(17)], dtype=torch.uint8)


def load_digits_domain(domain: str) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """One digits domain as ``(images, labels, classes)``.

    ``images`` is uint8 ``N x 1 x 8 x 8`` (ink high, 17 levels ``round(v * 255 / 16)``
    for UCI block counts ``v`` in 0..16), ``labels`` int64 ``N``, classes ``'0'..'9'``.
    The content is the same on every call; the tensors returned are fresh copies.
    """
    if domain == "handwritten":
        images, labels = _handwritten()
    elif domain == "printed":
        images, labels = _printed()
    else:
        raise DataError(f"unknown digits domain {domain!r}", hint="use one of: handwritten, printed")
    return images.clone(), labels.clone(), CLASSES


@functools.lru_cache(maxsize=1)
def _handwritten() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,797 UCI digits in scikit-learn's order."""
    table = _uci_digits_table()
    counts = torch.from_numpy(np.rint(table[:, :-1]).astype(np.int64).reshape(-1, 8, 8))
    return _LEVELS[counts].unsqueeze(1), torch.from_numpy(table[:, -1].astype(np.int64))


def _uci_digits_table() -> np.ndarray:
    """scikit-learn's copy of the UCI digits, one row per image: 64 block counts, then the label.

    Read from the file scikit-learn ships, as its ``load_digits`` reads it, without importing scikit-learn:
    importing it costs about 2 seconds, a tenth of a warm quickstart, for one small table."""
    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        shipped = Path(location) / "datasets" / "data" / "digits.csv.gz"
        if shipped.is_file():
            return np.loadtxt(shipped, delimiter=",")
    from sklearn.datasets import load_digits  # another layout of scikit-learn: ask it

    data, target = load_digits(return_X_y=True)
    return np.column_stack([data, target])


@functools.lru_cache(maxsize=1)
def _printed() -> tuple[torch.Tensor, torch.Tensor]:
    """50 renderings per digit, class-major; sample ``i`` of a class uses face ``i mod len(_FACES)``."""
    fonts = [ImageFont.truetype(path, _RENDER_SIZE) for path in _face_paths()]
    counts = np.empty((10 * _PER_CLASS, 8, 8), dtype=np.int64)
    labels = np.repeat(np.arange(10, dtype=np.int64), _PER_CLASS)
    for digit in range(10):
        for index in range(_PER_CLASS):
            rng = random.Random(_SEED + 1000 * digit + index)
            font = fonts[index % len(fonts)]
            counts[digit * _PER_CLASS + index] = _block_counts(_glyph_bitmap(font, str(digit), rng))
    return _LEVELS[torch.from_numpy(counts)].unsqueeze(1), torch.from_numpy(labels)


def _face_paths() -> list[str]:
    import matplotlib

    font_dir = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    paths = [os.path.join(font_dir, name) for name in _FACES]
    missing = [name for name, path in zip(_FACES, paths) if not os.path.isfile(path)]
    if missing:
        raise DataError(
            f"the printed digits need fonts that matplotlib ships, missing from {font_dir}: {', '.join(missing)}",
            hint="reinstall matplotlib (pip install --force-reinstall matplotlib)",
        )
    return paths


def _glyph_bitmap(font: ImageFont.FreeTypeFont, char: str, rng: random.Random) -> np.ndarray:
    """A 32x32 binary bitmap of one glyph, laid out like the UCI handwritten ones.

    Those fill the full height and sit centred horizontally, so the glyph is
    cropped to its ink, scaled to 29..32 px tall (aspect kept, then narrowed
    by up to 20%: handwriting runs narrower than type) and centred. Variation:
    rotation +-8 degrees, stroke weight (outline stroke and binarisation
    threshold) and +-1 px shifts.
    """
    # Only rng.random() is used: Python guarantees its sequence for a given int seed.
    def uniform(low: float, high: float) -> float:
        return low + (high - low) * rng.random()

    angle = uniform(-8.0, 8.0)
    stroke = round(uniform(0.0, 0.035) * _RENDER_SIZE)
    height = uniform(29.0, 32.0)
    narrowing = uniform(0.8, 1.0)
    threshold = uniform(100.0, 156.0)
    shift_x = int(rng.random() * 3) - 1
    shift_y = int(rng.random() * 3) - 1

    side = 2 * _RENDER_SIZE
    canvas = Image.new("L", (side, side), 0)
    ImageDraw.Draw(canvas).text(
        (side // 2, side // 2), char, fill=255, font=font, anchor="mm", stroke_width=stroke, stroke_fill=255
    )
    canvas = canvas.crop(canvas.getbbox()).rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    glyph = canvas.crop(canvas.point(_INK_LUT).getbbox())

    ink_w, ink_h = glyph.size
    scale = height / ink_h
    width = ink_w * scale * narrowing
    if width > _BITMAP:
        height *= _BITMAP / width
        width = _BITMAP
    width_px, height_px = max(1, round(width)), max(1, round(height))
    small = np.asarray(glyph.resize((width_px, height_px), Image.Resampling.BILINEAR))

    left = min(max((_BITMAP - width_px) // 2 + shift_x, 0), _BITMAP - width_px)
    top = min(max((_BITMAP - height_px) // 2 + shift_y, 0), _BITMAP - height_px)
    bitmap = np.zeros((_BITMAP, _BITMAP), dtype=bool)
    bitmap[top : top + height_px, left : left + width_px] = small >= threshold
    return bitmap


def _block_counts(bitmap: np.ndarray) -> np.ndarray:
    # UCI optdigits: "32x32 bitmaps are divided into nonoverlapping blocks of
    # 4x4 and the number of on pixels are counted in each block", giving 8x8 in 0..16.
    cells = _BITMAP // _BLOCK
    return bitmap.reshape(cells, _BLOCK, cells, _BLOCK).sum(axis=(1, 3))

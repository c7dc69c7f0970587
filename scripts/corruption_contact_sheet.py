"""Render every registered image corruption at every severity into one PNG contact sheet.

For looking, not for testing: one row per corruption in
``robustgate.data.corruptions.corruptions`` (registry order), columns "clean" and
"severity 1".."severity 5". The default image is built here (no download): a 2x2
mosaic of a small landscape, fine stripes/rings, rendered text and an upscaled
digit from robustgate's built-in ``printed`` digits. Every cell uses a fresh
``torch.Generator`` seeded with ``--seed``, so the sheet is reproducible. Tiles
smaller than 128 px are enlarged with nearest-neighbour for display only, so
``--size 32`` shows what the corruptions do to quickstart-sized images.

Usage::

    .venv/bin/python scripts/corruption_contact_sheet.py [--out reports/corruptions.png]
        [--size 224] [--seed 0] [--image PATH]
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps

from robustgate.data.corruptions import corruptions
from robustgate.data.digits import load_digits_domain
from robustgate.data.imageset import to_uint8

SEVERITIES = (1, 2, 3, 4, 5)
MIN_DISPLAY = 128  # smaller tiles are enlarged (nearest-neighbour, integer factor) to at least this
GAP = 6
MARGIN = 12
FONT_PATH = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
BOLD_PATH = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"


def display_scale(size: int) -> int:
    """Integer nearest-neighbour enlargement that makes a ``size`` tile at least MIN_DISPLAY px."""
    return max(1, math.ceil(MIN_DISPLAY / size))


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(BOLD_PATH if bold else FONT_PATH), size)


# --------------------------------------------------------------------------- default image


def _landscape(side: int) -> Image.Image:
    """Sky gradient, sun, layered hills with curved edges, a tree."""
    sky = Image.linear_gradient("L").resize((side, side))
    top, bottom = (40, 90, 180), (250, 200, 150)
    img = Image.merge("RGB", [sky.point(lambda v, a=a, b=b: a + (b - a) * v // 255) for a, b in zip(top, bottom)])
    draw = ImageDraw.Draw(img)
    s = side / 100
    draw.ellipse((62 * s, 14 * s, 84 * s, 36 * s), fill=(255, 235, 120))
    draw.ellipse((-40 * s, 55 * s, 80 * s, 140 * s), fill=(70, 130, 70))
    draw.ellipse((30 * s, 62 * s, 160 * s, 150 * s), fill=(40, 100, 55))
    draw.rectangle((22 * s, 52 * s, 26 * s, 72 * s), fill=(90, 60, 30))
    draw.ellipse((12 * s, 32 * s, 36 * s, 58 * s), fill=(30, 80, 40))
    for i in range(12):  # a picket fence: thin repeated verticals
        x = (52 + 4 * i) * s
        draw.rectangle((x, 80 * s, x + 1.5 * s, 92 * s), fill=(235, 230, 215))
    draw.rectangle((50 * s, 84 * s, 100 * s, 85.5 * s), fill=(235, 230, 215))
    return img


def _texture(side: int, size: int) -> Image.Image:
    """Zone-plate rings (a sweep of spatial frequencies) over a colour ramp, plus a stripe band.

    Frequencies are set for the final ``size``: rings reach a ~5 px period at the
    quadrant's edge and stripes are ~3 px wide, so both survive the reduction.
    """
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
    rings = 0.5 + 0.5 * torch.cos(0.15 * size * (xs**2 + ys**2))
    ramp = torch.stack([(xs + 1) / 2, (ys + 1) / 2, 1 - (xs + 1) / 2])
    rgb = 0.15 + 0.6 * ramp * rings + 0.25 * rings
    band = (ys > 0.55) & (ys < 0.85)
    stripes = (torch.floor((xs + 1) / 2 * max(4, size // 6)) % 2).expand(3, -1, -1)
    rgb = torch.where(band.expand(3, -1, -1), 0.15 + 0.7 * stripes, rgb)
    return Image.fromarray(to_uint8(rgb).permute(1, 2, 0).numpy())


def _text(side: int) -> Image.Image:
    """Dark text of several sizes on a warm card with a border."""
    img = Image.new("RGB", (side, side), (245, 232, 200))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, side - 1, side - 1), outline=(120, 40, 40), width=max(1, side // 40))
    for y, size, line in ((0.08, 0.26, "Aa"), (0.42, 0.15, "robust"), (0.64, 0.11, "gate 2024"), (0.82, 0.07, "the quick brown fox")):
        draw.text((side * 0.08, side * y), line, fill=(25, 25, 60), font=_font(max(1, round(side * size)), bold=size > 0.2))
    return img


def _digit(side: int) -> Image.Image:
    """A built-in printed digit, nearest-neighbour upscaled, dark-blue ink on paper."""
    images, labels, _ = load_digits_domain("printed")
    ink = images[int((labels == 3).nonzero()[0])][0].float() / 255.0
    grid = Image.fromarray(to_uint8(ink).numpy()).resize((side, side), Image.Resampling.NEAREST)
    alpha = torch.from_numpy(np.asarray(grid).copy()).float() / 255.0
    paper, pen = torch.tensor([0.97, 0.95, 0.9]), torch.tensor([0.1, 0.15, 0.45])
    rgb = paper[:, None, None] * (1 - alpha) + pen[:, None, None] * alpha
    return Image.fromarray(to_uint8(rgb).permute(1, 2, 0).numpy())


def default_image(size: int) -> Image.Image:
    """The 2x2 mosaic, drawn 4x (at least 512 px) larger and reduced with Lanczos for clean edges."""
    big = max(4 * size, 512)
    half = big // 2
    mosaic = Image.new("RGB", (2 * half, 2 * half))
    quadrants = (_landscape(half), _texture(half, size), _text(half), _digit(half))
    for (col, row), quadrant in zip(((0, 0), (1, 0), (0, 1), (1, 1)), quadrants):
        mosaic.paste(quadrant, (col * half, row * half))
    return mosaic.resize((size, size), Image.Resampling.LANCZOS)


def user_image(path: Path, size: int) -> Image.Image:
    """A user's image, centre-cropped to a square and resized to ``size``."""
    with Image.open(path) as img:
        return ImageOps.fit(ImageOps.exif_transpose(img).convert("RGB"), (size, size), Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------- sheet


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB image -> float 1 x 3 x H x W in [0, 1]."""
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 255.0


def to_image(batch: torch.Tensor) -> Image.Image:
    """Float 1 x 3 x H x W in [0, 1] -> PIL RGB image (rounded, clamped, as corrupt() stores it)."""
    return Image.fromarray(to_uint8(batch[0]).permute(1, 2, 0).contiguous().numpy())


def error_tile(side: int, message: str) -> Image.Image:
    """A dark, crossed-out display tile carrying ``message`` (wrapped to fit)."""
    tile = Image.new("RGB", (side, side), (60, 60, 60))
    draw = ImageDraw.Draw(tile)
    draw.line((0, 0, side, side), fill=(200, 40, 40), width=3)
    draw.line((0, side, side, 0), fill=(200, 40, 40), width=3)
    font = _font(12)
    text = "\n".join(textwrap.wrap(message, width=max(8, side // 8))[: max(1, side // 16)])
    draw.multiline_text((6, 6), text, fill=(255, 255, 255), font=font, spacing=2)
    return tile


def corrupted(name: str, clean: torch.Tensor, severity: int, seed: int) -> Image.Image | str:
    """One cell: corruption ``name`` at ``severity`` with a freshly seeded generator, or what went wrong."""
    try:
        out = corruptions.get(name)(clean.clone(), severity, torch.Generator().manual_seed(seed))
    except Exception as exc:  # one broken corruption must not hide the others
        problem = f"{type(exc).__name__}: {exc}"
    else:
        if out.shape == clean.shape:
            if not torch.isfinite(out).all() or out.min() < 0 or out.max() > 1:
                print(f"warning: {name} severity {severity}: values in [{out.min():.3g}, {out.max():.3g}], "
                      "not in [0, 1] (clamped for display)", file=sys.stderr)
            return to_image(out)
        problem = f"returned shape {tuple(out.shape)}, expected {tuple(clean.shape)}"
    print(f"error: {name} severity {severity}: {problem}", file=sys.stderr)
    return problem


def contact_sheet(clean_img: Image.Image, seed: int, caption: str) -> Image.Image:
    """Rows: registered corruptions; columns: clean, severity 1..5."""
    tile = clean_img.width * display_scale(clean_img.width)
    label_font, title_font = _font(16), _font(18, bold=True)
    names = corruptions.names()
    columns = ["clean"] + [f"severity {s}" for s in SEVERITIES]

    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max((probe.textlength(n, font=label_font) for n in names), default=0) + 2 * GAP
    title_h, header_h = 30, 24
    left, top = MARGIN + int(label_w), MARGIN + title_h + header_h
    width = left + len(columns) * (tile + GAP) - GAP + MARGIN
    height = top + max(1, len(names)) * (tile + GAP) - GAP + MARGIN
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((MARGIN, MARGIN), caption, fill="black", font=title_font)
    for j, title in enumerate(columns):
        cx = left + j * (tile + GAP) + tile // 2
        draw.text((cx, top - 4), title, fill="black", font=label_font, anchor="md")

    clean = to_tensor(clean_img)
    for i, name in enumerate(names):
        y = top + i * (tile + GAP)
        draw.text((left - GAP, y + tile // 2), name, fill="black", font=label_font, anchor="rm")
        cells = [clean_img] + [corrupted(name, clean, s, seed) for s in SEVERITIES]
        for j, cell in enumerate(cells):
            shown = error_tile(tile, cell) if isinstance(cell, str) else cell.resize((tile, tile), Image.Resampling.NEAREST)
            sheet.paste(shown, (left + j * (tile + GAP), y))
    if not names:
        draw.text((left, top), "no corruptions registered", fill="red", font=label_font)
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/corruptions.png"), help="PNG to write")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels the corruptions see (default 224)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed, the same for every cell (default 0)")
    parser.add_argument("--image", type=Path, help="your own image instead of the built-in mosaic (centre-cropped)")
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error("--size must be positive")

    clean = user_image(args.image, args.size) if args.image else default_image(args.size)
    source = args.image.name if args.image else "built-in mosaic"
    scale = display_scale(args.size)
    shown = f", shown x{scale}" if scale > 1 else ""
    caption = f"robustgate corruptions: {source}, {args.size}x{args.size} px{shown}, seed {args.seed}"
    sheet = contact_sheet(clean, args.seed, caption)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height}, {len(corruptions.names())} corruptions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

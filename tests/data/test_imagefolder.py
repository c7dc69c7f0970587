"""load_imagefolder: torchvision's ImageFolder layout and labels, decoded and resized to the model's geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import ImageFolder

from robustgate.data.imagefolder import load_imagefolder
from robustgate.errors import DataError

RED, GREEN, BLUE = (220, 20, 20), (20, 220, 20), (20, 20, 220)


def write_image(path: Path, height: int, width: int, color: tuple[int, int, int] | int, fmt: str | None = None) -> Path:
    """A flat-colour image file (RGB for a colour triple, greyscale for an int)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "L" if isinstance(color, int) else "RGB"
    Image.new(mode, (width, height), color).save(path, format=fmt)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Three classes made in unsorted order, mixed formats and sizes, plus files that are not images."""
    root = tmp_path / "imgs"
    write_image(root / "cat" / "c1.jpg", 30, 40, BLUE)
    write_image(root / "cat" / "c2.png", 17, 9, BLUE)
    write_image(root / "ant" / "a1.jpeg", 64, 48, RED)
    write_image(root / "ant" / "a2.png", 5, 7, RED)
    write_image(root / "ant" / "a3.bmp", 20, 20, RED)  # not decode_image's; read through PIL as ImageFolder does
    write_image(root / "bee" / "b1.jpg", 12, 50, GREEN)
    write_image(root / "bee" / "grey.png", 10, 10, 200)
    (root / "bee" / "notes.txt").write_text("not an image")
    (root / "README").write_text("top-level files are not classes")
    return root


def test_shapes_labels_and_classes_follow_sorted_folders(tree: Path) -> None:
    data = load_imagefolder(tree, (16, 12))
    assert data.images.shape == (7, 3, 16, 12)
    assert data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    assert data.classes == ("ant", "bee", "cat")
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_labels_match_torchvision_imagefolder(tree: Path) -> None:
    data = load_imagefolder(tree, (8, 8))
    reference = ImageFolder(str(tree))
    assert data.classes == tuple(reference.classes)
    assert data.labels.tolist() == reference.targets


def test_pixels_are_rgb_in_order_and_resized(tree: Path) -> None:
    data = load_imagefolder(tree, (16, 12))
    means = data.images.float().mean(dim=(2, 3))
    for row, label in zip(means, data.labels.tolist()):
        expected = {0: RED, 1: GREEN, 2: BLUE}[label]
        if label == 1 and abs(row[0] - row[1]) < 2:  # the grey image in "bee"
            continue
        assert torch.allclose(row, torch.tensor(expected, dtype=torch.float32), atol=6), (label, row)


def test_grey_images_become_three_equal_channels(tree: Path) -> None:
    data = load_imagefolder(tree, (10, 10))
    grey = data.images[4]  # bee/grey.png, after bee/b1.jpg
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    assert int(grey[0, 5, 5]) == 200


def test_one_channel(tree: Path) -> None:
    data = load_imagefolder(tree, (9, 9), channels=1)
    assert data.images.shape == (7, 1, 9, 9)
    red_luma = 0.299 * RED[0] + 0.587 * RED[1] + 0.114 * RED[2]
    assert abs(float(data.images[0].float().mean()) - red_luma) < 6
    assert int(data.images[4, 0, 4, 4]) == 200


def test_sixteen_bit_png_is_scaled_to_uint8(tmp_path: Path) -> None:
    root = tmp_path / "deep"
    (root / "x").mkdir(parents=True)
    Image.fromarray(np.full((6, 6), 65535, dtype=np.uint16)).save(root / "x" / "white.png")
    data = load_imagefolder(root, (4, 4), channels=1)
    assert data.images.dtype == torch.uint8
    assert int(data.images.min()) == 255


def test_missing_root(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_imagefolder(missing, (8, 8))
    assert f"dataset folder '{missing}' does not exist" in str(info.value)
    assert info.value.hint and "spec file" in info.value.hint and "${" in info.value.hint


def test_root_is_a_file(tmp_path: Path) -> None:
    file = write_image(tmp_path / "one.png", 4, 4, RED)
    with pytest.raises(DataError, match="is not a directory") as info:
        load_imagefolder(file, (8, 8))
    assert str(file) in str(info.value) and info.value.hint


def test_no_class_folders(tmp_path: Path) -> None:
    write_image(tmp_path / "loose.jpg", 4, 4, RED)
    with pytest.raises(DataError, match="has no class folders") as info:
        load_imagefolder(tmp_path, (8, 8))
    assert str(tmp_path) in str(info.value)
    assert info.value.hint and "<class>" in info.value.hint


def test_class_folder_without_images(tree: Path) -> None:
    (tree / "dog").mkdir()
    (tree / "dog" / "readme.txt").write_text("no images here")
    (tree / "emu").mkdir()
    with pytest.raises(DataError) as info:
        load_imagefolder(tree, (8, 8))
    assert "2 class folders have no images" in info.value.message
    assert info.value.message.endswith("dog, emu")
    assert info.value.hint and ".jpg" in info.value.hint


@pytest.mark.parametrize("content", [b"this is not a jpeg", b""], ids=["garbage", "empty"])
def test_undecodable_file_is_named(tree: Path, content: bytes) -> None:
    bad = tree / "bee" / "broken.jpg"
    bad.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_imagefolder(tree, (8, 8))
    text = str(info.value)
    assert f"cannot decode image file '{bad}'" in text
    assert "csrc" not in text and "Traceback" not in text
    assert info.value.hint and "corrupt" in info.value.hint


def test_truncated_jpeg_is_named(tree: Path) -> None:
    good = write_image(tree / "cat" / "noisy.jpg", 32, 32, BLUE)
    noise = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(noise).save(good)
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="noisy.jpg") as info:
        load_imagefolder(tree, (8, 8))
    assert "truncated" in info.value.message


def test_unsupported_channel_count(tree: Path) -> None:
    with pytest.raises(DataError, match="1 or 3 channels, not 2") as info:
        load_imagefolder(tree, (8, 8), channels=2)
    assert info.value.hint

"""load_office31: the standard <root>/<domain>/images/<class>/*.jpg layout, fixed class order, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from robustgate.data.office31 import OFFICE31_CLASSES, OFFICE31_DOMAINS, load_office31
from robustgate.errors import DataError

# The class folders of the standard release (as in thuml/Transfer-Learning-Library's Office31.CLASSES).
EXPECTED_CLASSES = (
    "back_pack", "bike", "bike_helmet", "bookcase", "bottle", "calculator", "desk_chair", "desk_lamp",
    "desktop_computer", "file_cabinet", "headphones", "keyboard", "laptop_computer", "letter_tray",
    "mobile_phone", "monitor", "mouse", "mug", "paper_notebook", "pen", "phone", "printer", "projector",
    "punchers", "ring_binder", "ruler", "scissors", "speaker", "stapler", "tape_dispenser", "trash_can",
)  # fmt: skip


def make_domain(root: Path, domain: str, classes: tuple[str, ...] = OFFICE31_CLASSES, size: int = 8) -> Path:
    """One tiny grey JPEG per class whose grey level encodes the class's index in OFFICE31_CLASSES."""
    images = root / domain / "images"
    for name in classes:
        (images / name).mkdir(parents=True)
        level = 8 * OFFICE31_CLASSES.index(name)
        Image.new("L", (size, size), level).save(images / name / f"frame_{name}.jpg")
    return images


@pytest.fixture
def office(tmp_path: Path) -> Path:
    root = tmp_path / "office31"
    make_domain(root, "amazon")
    return root


def test_class_list() -> None:
    assert OFFICE31_CLASSES == EXPECTED_CLASSES
    assert len(OFFICE31_CLASSES) == 31 == len(set(OFFICE31_CLASSES))
    assert list(OFFICE31_CLASSES) == sorted(OFFICE31_CLASSES)
    assert OFFICE31_DOMAINS == ("amazon", "dslr", "webcam")


def test_loads_a_domain(office: Path) -> None:
    data = load_office31(office, "amazon", (12, 10))
    assert data.images.shape == (31, 3, 12, 10)
    assert data.images.dtype == torch.uint8
    assert data.classes == OFFICE31_CLASSES
    assert data.labels.tolist() == list(range(31))
    levels = data.images.float().mean(dim=(1, 2, 3))
    assert torch.allclose(levels, 8.0 * data.labels.float(), atol=2)


def test_labels_are_stable_across_domains(office: Path) -> None:
    # webcam made in reverse order with larger images: labels still index OFFICE31_CLASSES
    make_domain(office, "webcam", tuple(reversed(OFFICE31_CLASSES)), size=20)
    (office / "webcam" / "images" / "mug" / "frame_mug_2.jpg").write_bytes(
        (office / "webcam" / "images" / "mug" / "frame_mug.jpg").read_bytes()
    )
    amazon = load_office31(office, "amazon", (8, 8))
    webcam = load_office31(office, "webcam", (8, 8), channels=1)
    assert webcam.classes == amazon.classes == OFFICE31_CLASSES
    assert webcam.images.shape == (32, 1, 8, 8)
    assert webcam.labels.bincount().tolist() == [1] * 17 + [2] + [1] * 13
    levels = webcam.images.float().mean(dim=(1, 2, 3))
    assert torch.allclose(levels, 8.0 * webcam.labels.float(), atol=2)


def test_hidden_folders_are_ignored(office: Path) -> None:
    (office / "amazon" / "images" / ".ipynb_checkpoints").mkdir()
    assert len(load_office31(office, "amazon", (8, 8))) == 31


def test_unknown_domain(office: Path) -> None:
    with pytest.raises(DataError) as info:
        load_office31(office, "Amazon", (8, 8))
    assert "unknown Office-31 domain 'Amazon'" in info.value.message
    assert "amazon, dslr, webcam" in info.value.message
    assert info.value.hint


def test_missing_root(tmp_path: Path) -> None:
    missing = tmp_path / "no-office"
    with pytest.raises(DataError) as info:
        load_office31(missing, "amazon", (8, 8))
    assert f"'{missing}' does not exist" in info.value.message
    assert "spec file" in info.value.hint and "OFFICE31_ROOT" in info.value.hint


def test_missing_domain_folder(office: Path) -> None:
    with pytest.raises(DataError) as info:
        load_office31(office, "dslr", (8, 8))
    assert f"domain folder '{office / 'dslr'}' does not exist" in info.value.message
    assert "(it has: amazon)" in info.value.message
    assert "Saenko" in info.value.hint and "OFFICE31_ROOT" in info.value.hint


def test_missing_images_folder(office: Path) -> None:
    (office / "webcam").mkdir()
    with pytest.raises(DataError) as info:
        load_office31(office, "webcam", (8, 8))
    assert f"'{office / 'webcam' / 'images'}' does not exist" in info.value.message
    assert "images/" in info.value.hint


def test_missing_classes_are_named(office: Path) -> None:
    images = office / "amazon" / "images"
    for name in ("ruler", "mug", "pen"):
        shutil.rmtree(images / name)
    with pytest.raises(DataError) as info:
        load_office31(office, "amazon", (8, 8))
    assert info.value.message == f"3 of Office-31's 31 classes are missing under '{images}': mug, pen, ruler"
    hint = info.value.hint
    assert "Saenko et al. 2010" in hint and "Adapting Visual Category Models to New Domains" in hint
    assert "download it yourself" in hint and "OFFICE31_ROOT" in hint


def test_misnamed_class_folder(office: Path) -> None:
    images = office / "amazon" / "images"
    (images / "back_pack").rename(images / "backpack")
    (images / "extras").mkdir()
    with pytest.raises(DataError) as info:
        load_office31(office, "amazon", (8, 8))
    message = info.value.message
    assert "1 of Office-31's 31 classes is missing" in message and message.split(";")[0].endswith(": back_pack")
    assert "not Office-31 classes: backpack, extras" in message
    assert "rename backpack -> back_pack" in info.value.hint


def test_empty_class_folder(office: Path) -> None:
    for jpg in (office / "amazon" / "images" / "stapler").iterdir():
        jpg.unlink()
    with pytest.raises(DataError, match="1 class folder has no images") as info:
        load_office31(office, "amazon", (8, 8))
    assert info.value.message.endswith(": stapler")


def test_corrupt_image_is_named(office: Path) -> None:
    bad = office / "amazon" / "images" / "pen" / "frame_pen.jpg"
    bad.write_bytes(b"\xff\xd8garbage")
    with pytest.raises(DataError) as info:
        load_office31(office, "amazon", (8, 8))
    assert f"'{bad}'" in info.value.message and info.value.hint

"""The built-in digits: both domains on the UCI 8x8 grid, deterministic, and a real but learnable shift."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustgate.data import digits
from robustgate.data.digits import DOMAINS, load_digits_domain
from robustgate.errors import DataError

LEVELS = {round(count * 255 / 16) for count in range(17)}
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_has_the_uci_layout(domain: str) -> None:
    images, labels, classes = load_digits_domain(domain)

    assert classes == tuple("0123456789")
    assert images.dtype == torch.uint8
    assert images.shape[1:] == (1, 8, 8)
    assert labels.dtype == torch.int64
    assert labels.shape == (images.shape[0],)
    assert set(labels.unique().tolist()) == set(range(10))
    assert set(images.unique().tolist()) <= LEVELS
    assert images.max() == 255  # some block is fully inked, as in the UCI data


def test_handwritten_is_sklearns_digits() -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, labels, _ = load_digits_domain("handwritten")

    assert images.shape == (1797, 1, 8, 8)
    assert labels.tolist() == bunch.target.tolist()
    expected = torch.tensor([[[round(v * 255 / 16) for v in row] for row in image] for image in bunch.images.tolist()])
    assert torch.equal(images[:, 0].long(), expected)


def test_handwritten_loads_without_importing_scikit_learn() -> None:
    """Importing scikit-learn costs seconds on every run; its digits file is read directly."""
    script = (
        "import sys; from robustgate.data.digits import load_digits_domain; "
        "images, labels, _ = load_digits_domain('handwritten'); "
        "print(len(labels), 'sklearn' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1797", "False"]


def test_printed_has_fifty_per_class() -> None:
    images, labels, _ = load_digits_domain("printed")

    assert images.shape == (500, 1, 8, 8)
    assert torch.bincount(labels, minlength=10).tolist() == [50] * 10


def test_printed_samples_vary_within_a_class() -> None:
    images, labels, _ = load_digits_domain("printed")

    for digit in range(10):
        members = images[labels == digit].flatten(1)
        assert len(torch.unique(members, dim=0)) > 40


@pytest.mark.parametrize("domain", DOMAINS)
def test_loading_is_deterministic_even_after_the_cache_is_cleared(domain: str) -> None:
    first = load_digits_domain(domain)
    second = load_digits_domain(domain)
    {"handwritten": digits._handwritten, "printed": digits._printed}[domain].cache_clear()
    rebuilt = load_digits_domain(domain)

    for other in (second, rebuilt):
        assert torch.equal(first[0], other[0])
        assert torch.equal(first[1], other[1])
        assert first[2] == other[2]


@pytest.mark.parametrize("domain", DOMAINS)
def test_callers_cannot_change_the_cached_set(domain: str) -> None:
    images, labels, _ = load_digits_domain(domain)
    images.zero_()
    labels.fill_(7)

    again_images, again_labels, _ = load_digits_domain(domain)
    assert again_images.max() == 255
    assert set(again_labels.unique().tolist()) == set(range(10))


@pytest.mark.parametrize("domain", ["", "Printed", "HANDWRITTEN", "mnist", "printed "])
def test_unknown_domain_names_the_choices(domain: str) -> None:
    with pytest.raises(DataError) as caught:
        load_digits_domain(domain)

    assert caught.value.message == f"unknown digits domain {domain!r}"
    assert caught.value.hint == "use one of: handwritten, printed"
    assert "fix: use one of: handwritten, printed" in str(caught.value)


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=20).filter(lambda name: name not in DOMAINS))
def test_any_other_name_is_a_data_error(domain: str) -> None:
    with pytest.raises(DataError):
        load_digits_domain(domain)


def test_printed_faces_really_contain_digit_glyphs() -> None:
    import os

    import matplotlib

    ttlib = pytest.importorskip("fontTools.ttLib")
    font_dir = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    for face in digits._FACES:
        cmap = ttlib.TTFont(os.path.join(font_dir, face)).getBestCmap()
        assert tuple(cmap.get(ord(char)) for char in "0123456789") == DIGIT_NAMES, face


def _nearest_mean_accuracy(train: tuple, test: tuple) -> float:
    train_x, train_y = train[0].flatten(1).float(), train[1]
    test_x, test_y = test[0].flatten(1).float(), test[1]
    means = torch.stack([train_x[train_y == digit].mean(0) for digit in range(10)])
    predicted = torch.cdist(test_x, means).argmin(1)
    return (predicted == test_y).float().mean().item()


def test_printed_is_a_real_but_learnable_shift() -> None:
    handwritten = load_digits_domain("handwritten")
    printed = load_digits_domain("printed")

    mean_gap = (handwritten[0].float().mean(0) - printed[0].float().mean(0)).abs().mean() / 255
    assert mean_gap > 0.02

    in_domain = _nearest_mean_accuracy(handwritten, handwritten)
    cross_domain = _nearest_mean_accuracy(handwritten, printed)
    assert cross_domain > 0.3  # chance is 0.1
    assert cross_domain < in_domain - 0.1


def test_the_builtin_dataset_kind_counts_the_digits_classes_without_loading_them() -> None:
    from robustgate.data.digits import CLASSES, load_digits_domain
    from robustgate.data.kinds import BuiltinParams, dataset_kinds

    for domain in ("handwritten", "printed"):
        params = BuiltinParams(builtin="digits", domain=domain)
        assert dataset_kinds.get("builtin").class_count(params) == len(CLASSES) == len(load_digits_domain(domain)[2])

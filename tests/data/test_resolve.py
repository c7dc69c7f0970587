"""Datasets declared in a spec: parts of one source, subsamples and corrupted copies."""

from __future__ import annotations

import textwrap

import pytest
import torch
from tiny_spec_edits import edit

from robustgate.data.resolve import SpecDatasets
from robustgate.errors import DataError
from robustgate.spec import load_spec

SPEC = """\
robustgate: 1
seed: 3
model:
  arch: torchvision:resnet18
  weights: train
  train: {on: train}
  input: {size: [24, 24], mean: [0.5], std: [0.25]}
datasets:
  train: {builtin: digits, domain: handwritten, part: train, split: 0.7}
  test: {builtin: digits, domain: handwritten, part: test, split: 0.7}
  printed: {builtin: digits, domain: printed, samples: 100}
  noisy: {from: test, corruption: gaussian_noise, severity: 5}
  site: {imagefolder: ${SITE_ROOT}/images}
contracts:
  - accuracy: {on: test, min: 0.5}
"""


@pytest.fixture
def datasets(tmp_path) -> SpecDatasets:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC))
    return SpecDatasets(load_spec(path))


def test_train_and_test_parts_split_one_source(datasets: SpecDatasets) -> None:
    train, test = datasets["train"], datasets["test"]
    assert len(train) + len(test) == 1797
    assert len(train) == pytest.approx(0.7 * 1797, abs=10)
    assert torch.equal(torch.bincount(train.labels) + torch.bincount(test.labels), torch.tensor([178, 182, 177, 183, 181, 182, 181, 179, 174, 180]))
    assert train.images.shape[1:] == (1, 24, 24)  # the model's input geometry, one channel as declared


def test_subsample_keeps_classes_balanced(datasets: SpecDatasets) -> None:
    printed = datasets["printed"]
    assert len(printed) == 100 and torch.bincount(printed.labels).tolist() == [10] * 10


def test_corrupted_copy_keeps_labels_and_changes_pixels(datasets: SpecDatasets) -> None:
    noisy, test = datasets["noisy"], datasets["test"]
    assert torch.equal(noisy.labels, test.labels)
    assert (noisy.images.float() - test.images.float()).abs().mean() > 10
    assert noisy.fingerprint() != test.fingerprint()


def test_unset_environment_variable_names_the_dataset_and_line(datasets: SpecDatasets, monkeypatch) -> None:
    monkeypatch.delenv("SITE_ROOT", raising=False)
    with pytest.raises(DataError) as err:
        datasets["site"]
    assert str(err.value).startswith(f"{datasets.spec.lines.path}:13: dataset 'site': environment variable SITE_ROOT is not set")


def test_loading_is_deterministic(tmp_path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC))
    first, second = SpecDatasets(load_spec(path)), SpecDatasets(load_spec(path))
    for name in ("train", "printed", "noisy"):
        assert first[name].fingerprint() == second[name].fingerprint()


def test_any_dataset_can_be_corrupted_including_a_user_imagefolder(tmp_path, monkeypatch) -> None:
    from PIL import Image

    for label in ("cat", "dog"):
        folder = tmp_path / "site" / "images" / label
        folder.mkdir(parents=True)
        for i in range(3):
            pixels = torch.randint(0, 256, (40, 30, 3), generator=torch.Generator().manual_seed(i)).to(torch.uint8)
            Image.fromarray(pixels.numpy()).save(folder / f"{i}.png")
    monkeypatch.setenv("SITE_ROOT", str(tmp_path / "site"))
    spec = edit(SPEC, "  site: {imagefolder: ${SITE_ROOT}/images}\n", "  site: {imagefolder: ${SITE_ROOT}/images}\n  site-snow: {from: site, corruption: snow, severity: 2}\n")
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(spec))
    datasets = SpecDatasets(load_spec(path))
    site, snowy = datasets["site"], datasets["site-snow"]
    assert snowy.images.shape == site.images.shape == (6, 1, 24, 24) and torch.equal(snowy.labels, site.labels)
    assert snowy.classes == ("cat", "dog")
    assert snowy.images.float().mean() > site.images.float().mean()  # snow whitens

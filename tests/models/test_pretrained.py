"""torchvision's ImageNet weights offline: ``weights: imagenet`` loads them from torch hub's folder and gives the
classifier a head for the spec's classes; ``robustgate fetch-weights`` downloads them (here: from a local file
URL, since this machine has no network), checking the hash torchvision puts in the file name."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision

from robustgate.cli import main
from robustgate.errors import ModelError
from robustgate.models import pretrained
from robustgate.models.pretrained import checkpoint_path, fetch, load_pretrained, resolve

ARCH = "shufflenet_v2_x0_5"  # a small torchvision classifier (5 MB of weights) with an `fc` head


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path / "torch-home"


def _imagenet_file(torch_home: Path) -> dict[str, torch.Tensor]:
    """Stand-in ImageNet weights (a seeded 1000-class net) where torchvision would cache the real ones."""
    torch.manual_seed(1)
    state = torchvision.models.get_model(ARCH, weights=None).state_dict()
    path = checkpoint_path(resolve(ARCH, "imagenet"))
    assert path.is_relative_to(torch_home) and path.name == "shufflenetv2_x0.5-f707e7126e.pth"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return state


def test_the_backbone_loads_and_the_head_is_sized_for_the_spec(torch_home: Path) -> None:
    saved = _imagenet_file(torch_home)
    net = torchvision.models.get_model(ARCH, weights=None, num_classes=10)
    head = load_pretrained(net, ARCH, "IMAGENET1K_V1")
    assert head == ["fc.weight", "fc.bias"] and net.fc.weight.shape == (10, 1024)
    loaded = net.state_dict()
    assert all(torch.equal(loaded[key], tensor) for key, tensor in saved.items() if key not in head)
    same = torchvision.models.get_model(ARCH, weights=None)  # 1000 classes: nothing to replace
    assert load_pretrained(same, ARCH, "ShuffleNet_V2_X0_5_Weights.DEFAULT") == []


def test_absent_weights_say_where_they_were_looked_for_and_how_to_get_them(torch_home: Path) -> None:
    with pytest.raises(ModelError) as caught:
        load_pretrained(torchvision.models.get_model(ARCH, weights=None), ARCH, "imagenet")
    text = str(caught.value)
    assert str(torch_home / "hub" / "checkpoints" / "shufflenetv2_x0.5-f707e7126e.pth") in text
    assert f"robustgate fetch-weights {ARCH}" in text and "never downloads during a run" in text


SPEC = """\
robustgate: 1
model:
  arch: {arch}
  kwargs: {{num_classes: 10}}
  weights: {weights}
{train}  input: {{size: [32, 32]}}
datasets:
  digits-train: {{builtin: digits, domain: handwritten, part: train}}
  handwritten: {{builtin: digits, domain: handwritten, part: test}}
contracts:
  - accuracy: {{on: handwritten, min: 0.0}}
"""
TRAIN = "  train: {on: digits-train, epochs: 1, lr: 0.003}\n"


def test_a_spec_fine_tunes_imagenet_weights_end_to_end(pytester: pytest.Pytester, torch_home: Path, write_spec) -> None:
    _imagenet_file(torch_home)
    write_spec(SPEC.format(arch=ARCH, weights="imagenet", train=TRAIN), "pretrained.yaml")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    write_spec(SPEC.format(arch=ARCH, weights="imagenet", train=""), "pretrained.yaml")
    untrained = pytester.runpytest("-p", "no:cacheprovider")
    untrained.assert_outcomes(errors=0, failed=1)
    untrained.stdout.fnmatch_lines(["*pretrained.yaml:2: weights: imagenet gives shufflenet_v2_x0_5 a new classifier head "
                                    "(fc.weight, fc.bias) for 10 classes, which needs training*", "*fix: add a `train:` section*"])


@pytest.mark.parametrize(
    ("arch", "weights", "message"),
    [
        ("resnet18", "IMAGENET1K_V9", "'IMAGENET1K_V9' is not a weights entry of resnet18; it has: ResNet18_Weights.IMAGENET1K_V1"),
        ("resnet18", "ResNet50_Weights.IMAGENET1K_V1", "is not a weights entry of resnet18"),
        ("tinynet:build", "imagenet", "arch 'tinynet:build' is not a torchvision model"),
    ],
)
def test_weights_names_are_checked_at_collection(pytester: pytest.Pytester, write_spec, arch: str, weights: str, message: str) -> None:
    write_spec(SPEC.format(arch=arch, weights=weights, train=TRAIN), "named.yaml")
    result = pytester.runpytest("--collect-only", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([f"*named.yaml:5: model.weights: *{message}*"])  # the weights line, not the section's


def test_fetch_downloads_through_a_file_url_and_checks_the_hash(torch_home: Path, tmp_path: Path, monkeypatch) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    content = b"weights of a model torchvision does not ship"
    name = f"tiny-{hashlib.sha256(content).hexdigest()[:10]}.pth"  # torchvision's naming: the hash prefix after '-'
    (mirror / name).write_bytes(content)
    # an entry for that file stands in for torchvision's registry; the download, hash check and placing are real
    monkeypatch.setattr(pretrained, "resolve", lambda arch, weights: SimpleNamespace(url=f"https://download.pytorch.org/models/{name}"))
    target = fetch("tiny", mirror=mirror.as_uri())
    assert target == torch_home / "hub" / "checkpoints" / name and target.read_bytes() == content


def test_fetch_refuses_a_file_that_is_not_the_one_torchvision_names(torch_home: Path, tmp_path: Path, capsys) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "shufflenetv2_x0.5-f707e7126e.pth").write_bytes(b"not the ImageNet weights")
    assert main(["fetch-weights", ARCH, "--mirror", mirror.as_uri()]) == 1
    error = capsys.readouterr().err
    assert "robustgate fetch-weights:" in error and "is not shufflenetv2_x0.5-f707e7126e.pth" in error
    assert not checkpoint_path(resolve(ARCH, "imagenet")).exists()  # nothing unverified where runs read
    assert main(["fetch-weights", ARCH, "--mirror", (tmp_path / "nowhere").as_uri()]) == 1
    assert "cannot download" in capsys.readouterr().err

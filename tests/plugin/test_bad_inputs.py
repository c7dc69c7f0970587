"""Bad models, weights and data at run time: one clear failure each, never a traceback, never a pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from tiny_spec_edits import edit

SPEC = """\
robustgate: 1
model:
  arch: {arch}
  kwargs: {{num_classes: 10}}
  weights: weights.pt
  input: {{size: [16, 16], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}}
datasets:
  digits: {{builtin: digits, domain: handwritten, samples: 100}}
{extra}
contracts:
  - accuracy: {{on: {on}, min: 0.0}}
"""


def run_spec(project: pytest.Pytester, *, arch: str = "tinynet:build", on: str = "digits", extra: str = "") -> str:
    (project.path / "robustness_specs" / "tiny.yaml").write_text(SPEC.format(arch=arch, on=on, extra=extra))
    result = project.runpytest("-p", "no:cacheprovider", "--robustgate-no-cache")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "Traceback" not in out and "site-packages/torch" not in out
    return out


def save_tiny(project: pytest.Pytester, num_classes: int = 10, name: str = "build") -> None:
    import tinynet  # written by the tiny_project fixture

    torch.save(getattr(tinynet, name)(num_classes).state_dict(), project.path / "robustness_specs" / "weights.pt")


def test_missing_weights_file(tiny_project: pytest.Pytester) -> None:
    out = run_spec(tiny_project)
    assert "robustness_specs/tiny.yaml:2: weights file" in out
    assert "weights.pt' does not exist" in out
    assert "fix: give the path of a state_dict" in out


def test_checkpoint_with_the_wrong_class_count(tiny_project: pytest.Pytester) -> None:
    save_tiny(tiny_project, num_classes=31)
    out = run_spec(tiny_project)
    assert "checkpoint 'weights.pt' does not fit tinynet:build: '13.weight' has shape [31, 32] in the checkpoint but [10, 32] in the model" in out
    assert "num_classes" in out


def test_checkpoint_of_another_architecture(tiny_project: pytest.Pytester) -> None:
    torch.save(torch.nn.Linear(4, 2).state_dict(), tiny_project.path / "robustness_specs" / "weights.pt")
    out = run_spec(tiny_project)
    assert "does not fit tinynet:build: '0.weight' is missing from the checkpoint" in out


def test_corrupt_checkpoint(tiny_project: pytest.Pytester) -> None:
    (tiny_project.path / "robustness_specs" / "weights.pt").write_bytes(b"\x00not a checkpoint" * 10)
    out = run_spec(tiny_project)
    assert ("weights.pt' is truncated or not a PyTorch checkpoint (it starts with b'\\x00not a c', neither a zip archive "
            "nor a pickle); save it again with torch.save(model.state_dict(), PATH)") in out
    assert "trusted" not in out


def test_truncated_checkpoint(tiny_project: pytest.Pytester) -> None:
    save_tiny(tiny_project)
    path = tiny_project.path / "robustness_specs" / "weights.pt"
    whole = path.read_bytes()
    for cut in (len(whole) // 2, len(whole) - 20):  # without its zip directory, and inside it
        path.write_bytes(whole[:cut])
        out = run_spec(tiny_project)
        assert "weights.pt' is truncated" in out  # told from the zip directory, before torch reads it
        assert "save it again with torch.save(model.state_dict(), PATH)" in out
        assert "trusted" not in out and "FixtureRequest" not in out


def test_empty_checkpoint(tiny_project: pytest.Pytester) -> None:
    (tiny_project.path / "robustness_specs" / "weights.pt").write_bytes(b"")
    out = run_spec(tiny_project)
    assert "weights.pt' is empty (0 bytes): truncated or not a PyTorch checkpoint; save it again with" in out
    assert "trusted" not in out


def test_a_checkpoint_wrapping_its_state_dict_under_another_key(tiny_project: pytest.Pytester) -> None:
    import tinynet

    state = tinynet.build(10).state_dict()
    torch.save({"net": state, "epoch": 3}, tiny_project.path / "robustness_specs" / "weights.pt")
    out = run_spec(tiny_project)
    assert (f"holds a dict with keys 'net' (a state_dict of {len(state)} tensors), 'epoch' (int), not a state_dict of "
            "tensors") in out
    assert "fix: re-save the weights under 'net' alone: torch.save(torch.load(PATH, weights_only=True)['net'], NEW_PATH)" in out


def test_pickled_model_needs_trust(tiny_project: pytest.Pytester) -> None:
    import tinynet

    torch.save(tinynet.build(10), tiny_project.path / "robustness_specs" / "weights.pt")
    out = run_spec(tiny_project)
    assert ("weights.pt' holds a pickled torch.nn.modules.container.Sequential (a whole model or training object, not "
            "only tensors), and unpickling it can run code from the file") in out
    assert "add `trusted: true` under model:" in out
    assert "\x1b[" not in out and "[1m" not in out  # torch's own message carries terminal colour codes


FORWARDS = """
import torch
from torch import nn
from tinynet import build


class Pair(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = build(num_classes)

    def forward(self, x):
        logits = self.net(x)
        return (logits, logits.detach()) if self.kind == "tuple" else {"logits": logits, "features": x}


def pair(num_classes=10):
    model = Pair(num_classes)
    model.kind = "tuple"
    return model


def mapping(num_classes=10):
    model = Pair(num_classes)
    model.kind = "dict"
    return model
"""


@pytest.mark.parametrize(("factory", "said"), [
    ("pair", "returns a tuple of 2 (Tensor [2, 10], Tensor [2, 10]), not a tensor of logits"),
    ("mapping", "returns a dict with keys 'logits', 'features', not a tensor of logits"),
])
def test_a_model_returning_a_tuple_or_dict(tiny_project: pytest.Pytester, factory: str, said: str) -> None:
    tiny_project.makepyfile(forwards=FORWARDS)
    out = run_spec(tiny_project, arch=f"forwards:{factory}")  # the output is probed before weights are read
    assert f"forwards:{factory} {said}" in out
    assert "fix: make the model's forward return the batch x classes logits alone" in out


def test_a_trusted_pickle_loads_and_every_report_says_so(tiny_project: pytest.Pytester) -> None:
    import json

    import tinynet

    torch.save(tinynet.build(10), tiny_project.path / "robustness_specs" / "weights.pt")  # a whole pickled model
    spec = edit(SPEC.format(arch="tinynet:build", on="digits", extra=""), "  weights: weights.pt\n",
                "  weights: weights.pt\n  trusted: true\n")
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(spec)
    tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-no-cache").assert_outcomes(passed=1)
    reports = tiny_project.path / "reports"
    doc = json.loads((reports / "results.json").read_text())
    assert doc["specs"]["robustness_specs/tiny.yaml"]["trusted"] == "weights.pt"
    said = "unpickled with `trusted: true`, which can run code): `robustness_specs/tiny.yaml: weights.pt`"
    assert said in (reports / "summary.md").read_text()
    assert "<b>Trusted weights</b>" in (reports / "report.html").read_text()
    weights = str((tiny_project.path / "robustness_specs" / "weights.pt").resolve())
    assert doc["specs"]["robustness_specs/tiny.yaml"]["paths"] == {"model.weights": weights}  # what the run read
    assert f"Files and folders robustness_specs/tiny.yaml read: model.weights `{weights}`" in (reports / "summary.md").read_text()


def test_unknown_architecture_fails_collection(tiny_project: pytest.Pytester) -> None:
    spec = SPEC.format(arch="torchvision:resnet181", on="digits", extra="")
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(spec)
    result = tiny_project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["robustness_specs/tiny.yaml:3: model.arch: unknown torchvision architecture 'resnet181'; did you mean 'resnet18'?"]
    )


@pytest.mark.parametrize(("arch", "said"), [
    ("tinynet:biuld", "model.arch: 'tinynet' has no callable 'biuld'; did you mean 'build'?"),
    ("tinynett:build", "model.arch: cannot import 'tinynett' for arch 'tinynett:build': no such module in "),
])
def test_a_factory_that_cannot_be_imported_is_one_collection_error(tiny_project: pytest.Pytester, arch: str, said: str) -> None:
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(SPEC.format(arch=arch, on="digits", extra=""))
    result = tiny_project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)  # one error for the spec, not one per item
    result.stdout.fnmatch_lines([f"robustness_specs/tiny.yaml:3: {said}*"])
    assert "Traceback" not in result.stdout.str()


def test_missing_dataset_folder(tiny_project: pytest.Pytester) -> None:
    save_tiny(tiny_project)
    out = run_spec(tiny_project, on="site", extra="  site: {imagefolder: data/site_b}")
    assert "robustness_specs/tiny.yaml:9: dataset 'site':" in out
    assert "data/site_b' does not exist" in out


def test_paths_that_leave_the_project_are_refused_not_followed(tiny_project: pytest.Pytester) -> None:
    """A spec (say, from a pull request) may not read files outside its project by a relative path or a symlink."""
    tiny_project.makefile(".toml", pyproject="[project]\nname = 'tiny'\n")  # marks the project's bounds
    outside = tiny_project.path.parent / f"{tiny_project.path.name}-outside"
    (outside / "0").mkdir(parents=True)
    Image.new("RGB", (20, 20)).save(outside / "0" / "a.png")
    save_tiny(tiny_project)
    out = run_spec(tiny_project, on="site", extra=f"  site: {{imagefolder: ../../{outside.name}}}")
    assert f"robustness_specs/tiny.yaml:9: dataset 'site': '../../{outside.name}' leads out of the project" in out
    (tiny_project.path / "linked").symlink_to(outside)
    out = run_spec(tiny_project, on="site", extra="  site: {imagefolder: ../linked}")
    assert "'../linked' leads out of the project" in out and "fix: if the spec is meant to read it" in out


def test_office31_root_with_missing_classes(tiny_project: pytest.Pytester) -> None:
    from robustgate.data.office31 import OFFICE31_CLASSES

    save_tiny(tiny_project, num_classes=31)
    root = tiny_project.path / "office31"
    for name in OFFICE31_CLASSES[:-3]:
        folder = root / "webcam" / "images" / name
        folder.mkdir(parents=True)
        Image.new("RGB", (20, 20), (120, 30, 200)).save(folder / "frame_0001.jpg")
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(
        edit(edit(SPEC.format(arch="tinynet:build", on="webcam", extra="  webcam: {office31: ../office31, domain: webcam}"),
                  "num_classes: 10", "num_classes: 31"), "  digits: {builtin: digits, domain: handwritten, samples: 100}\n", "")
    )
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-no-cache")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*3 of Office-31's 31 classes are missing under*: stapler, tape_dispenser, trash_can*"])


def test_labels_that_do_not_fit_the_outputs(tiny_project: pytest.Pytester) -> None:
    save_tiny(tiny_project)
    for cls in ("cat", "dog", "fox"):
        folder = tiny_project.path / "robustness_specs" / "three" / cls
        folder.mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (24, 24), (40 * i, 90, 10)).save(folder / f"{i}.png")
    out = run_spec(tiny_project, on="three", extra="  three: {imagefolder: three}")
    assert "dataset 'three' has 3 classes but the model outputs 10 logits" in out
    assert "num_classes: 3" in out


def test_model_that_outputs_nan(tiny_project: pytest.Pytester) -> None:
    save_tiny(tiny_project, name="nan_net")
    out = run_spec(tiny_project, arch="tinynet:nan_net")
    assert "baseline produced NaN or infinite logits on 100 of 100 images of 'digits'" in out


def test_cuda_requested_without_a_gpu(tiny_project: pytest.Pytester) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    save_tiny(tiny_project)
    spec = SPEC.format(arch="tinynet:build", on="digits", extra="")
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(edit(spec, "model:", "device: cuda\nmodel:"))
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-no-cache")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the spec asks for device: cuda but torch sees no CUDA device*"])


def test_nan_model_fails_its_int8_variant_cleanly_too(tiny_project: pytest.Pytester) -> None:
    save_tiny(tiny_project, name="nan_net")
    spec = SPEC.format(arch="tinynet:nan_net", on="digits", extra="")
    spec = edit(spec, "contracts:", "variants:\n  int8: {ptq: {calibrate: {on: digits, samples: 20}}}\ncontracts:")
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(spec)
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-no-cache", "-k", "int8")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*ptq: the model produces NaN or infinite outputs on the calibration images*"])
    assert "Traceback" not in result.stdout.str()


def test_a_last_training_batch_of_one_image_is_fine(tiny_project: pytest.Pytester) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    spec = edit(edit(spec, "part: train}", "part: train, samples: 65}"), "lr: 0.01}", "lr: 0.01, batch_size: 64}")
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(edit(spec, "min: 0.5", "min: 0.0"))
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-no-cache", "-k", "baseline")
    result.assert_outcomes(passed=1, deselected=2)


def test_class_names_must_match_the_training_set(tiny_project: pytest.Pytester) -> None:
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for word in words:
        folder = tiny_project.path / "robustness_specs" / "words" / word
        folder.mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (16, 16), (25 * i, 0, 0)).save(folder / f"{i}.png")
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    spec = edit(edit(spec, "datasets:\n", "datasets:\n  words: {imagefolder: words}\n"), "on: printed", "on: words")
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(spec)
    result = tiny_project.runpytest("-p", "no:cacheprovider", "-k", "words")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(
        ["*dataset 'words' has classes [[]eight, five, four, nine, one, ...] but the model was trained on [[]0, 1, 2, 3, 4, ...]*"]
    )


FACTORY_SPEC = """\
robustgate: 1
model:
  arch: {arch}
  kwargs: {{num_classes: 10}}
  weights: train
  train: {{on: digits, epochs: 1}}
  input: {{size: [16, 16], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}}
datasets:
  digits: {{builtin: digits, domain: handwritten, samples: 100}}
  held-out: {{builtin: digits, domain: printed, samples: 100}}
contracts:
  - accuracy: {{on: held-out, min: 0.0}}
"""


MY_MODELS = """
from torch import nn


def build(num_classes=10):
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, num_classes))
"""


@pytest.mark.parametrize("beside", ["robustness_specs", "."])
def test_a_factory_beside_the_spec_or_at_the_rootdir_imports_under_plain_pytest(pytester: pytest.Pytester, beside: str) -> None:
    (pytester.path / "robustness_specs").mkdir()
    (pytester.path / beside / "mymodels.py").write_text(MY_MODELS)
    (pytester.path / "robustness_specs" / "gate.yaml").write_text(FACTORY_SPEC.format(arch="mymodels:build"))
    pytester.makeini("[pytest]\n")  # the rootdir: the folder plain `pytest` runs in, which is not on sys.path
    # the `pytest` console script as a user runs it: pytester's own runs put the current folder on PYTHONPATH
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    run = subprocess.run([str(Path(sys.executable).parent / "pytest"), "-p", "no:cacheprovider", "--robustgate-no-cache",
                          "robustness_specs"], cwd=pytester.path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-3000:]


def test_a_factory_written_with_a_dot_gets_did_you_mean(tiny_project: pytest.Pytester) -> None:
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(FACTORY_SPEC.format(arch="tinynet.build"))
    result = tiny_project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["robustness_specs/tiny.yaml:3: model.arch: 'tinynet.build' is neither a torchvision "
                                 "architecture nor a factory: a factory is written module:function; did you mean "
                                 "'tinynet:build'?"])


BOOM = """
from torch import nn
from tinynet import build


class Boom(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = build(num_classes)

    def forward(self, x):
        if x.shape[0] > 2:  # the two-image shape probe passes; evaluating the dataset does not
            raise RuntimeError("boom on real images")
        return self.net(x)


def boom(num_classes=10):
    return Boom(num_classes)
"""


def test_an_unexpected_exception_is_named_in_the_summary_not_its_traceback(tiny_project: pytest.Pytester) -> None:
    tiny_project.makepyfile(boom=BOOM)
    import boom

    torch.save(boom.boom(10).state_dict(), tiny_project.path / "robustness_specs" / "weights.pt")
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(SPEC.format(arch="boom:boom", on="digits", extra=""))
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-no-cache")
    result.assert_outcomes(failed=1)
    row = next(line for line in result.stdout.lines if line.startswith("robustness_specs/tiny.yaml  baseline"))
    assert "ERROR" in row and "RuntimeError: boom on real images" in row, row
    assert "FixtureRequest" not in row

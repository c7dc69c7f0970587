"""Bad models, weights and data at run time: one clear failure each, never a traceback, never a pass."""

from __future__ import annotations


import pytest
import torch
from PIL import Image

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
    assert "checkpoint 'weights.pt' does not fit tinynet:build: '9.weight' has shape [31, 32] in the checkpoint but [10, 32] in the model" in out
    assert "num_classes" in out


def test_checkpoint_of_another_architecture(tiny_project: pytest.Pytester) -> None:
    torch.save(torch.nn.Linear(4, 2).state_dict(), tiny_project.path / "robustness_specs" / "weights.pt")
    out = run_spec(tiny_project)
    assert "does not fit tinynet:build: '0.weight' is missing from the checkpoint" in out


def test_corrupt_checkpoint(tiny_project: pytest.Pytester) -> None:
    (tiny_project.path / "robustness_specs" / "weights.pt").write_bytes(b"\x00not a checkpoint" * 10)
    out = run_spec(tiny_project)
    assert "cannot read checkpoint" in out


def test_pickled_model_needs_trust(tiny_project: pytest.Pytester) -> None:
    import tinynet

    torch.save(tinynet.build(10), tiny_project.path / "robustness_specs" / "weights.pt")
    out = run_spec(tiny_project)
    assert "add `trusted: true` under model:" in out


def test_a_trusted_pickle_loads_and_every_report_says_so(tiny_project: pytest.Pytester) -> None:
    import json

    import tinynet

    torch.save(tinynet.build(10), tiny_project.path / "robustness_specs" / "weights.pt")  # a whole pickled model
    spec = SPEC.format(arch="tinynet:build", on="digits", extra="").replace("  weights: weights.pt\n",
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


def test_unknown_factory_fails_the_items(tiny_project: pytest.Pytester) -> None:
    out = run_spec(tiny_project, arch="tinynet:biuld")
    assert "'tinynet' has no callable 'biuld'; did you mean 'build'?" in out


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
        SPEC.format(arch="tinynet:build", on="webcam", extra="  webcam: {office31: ../office31, domain: webcam}").replace(
            "num_classes: 10", "num_classes: 31"
        )
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
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(spec.replace("model:", "device: cuda\nmodel:"))
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-no-cache")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the spec asks for device: cuda but torch sees no CUDA device*"])


def test_nan_model_fails_its_int8_variant_cleanly_too(tiny_project: pytest.Pytester) -> None:
    save_tiny(tiny_project, name="nan_net")
    spec = SPEC.format(arch="tinynet:nan_net", on="digits", extra="")
    spec = spec.replace("contracts:", "variants:\n  int8: {ptq: {calibrate: {on: digits, samples: 20}}}\ncontracts:")
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(spec)
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-no-cache", "-k", "int8")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*ptq: the model produces NaN or infinite outputs on the calibration images*"])
    assert "Traceback" not in result.stdout.str()


def test_a_last_training_batch_of_one_image_is_fine(tiny_project: pytest.Pytester) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    spec = spec.replace("part: train}", "part: train, samples: 65}").replace("lr: 0.01}", "lr: 0.01, batch_size: 64}")
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(spec.replace("min: 0.5", "min: 0.0"))
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
    spec = spec.replace("datasets:\n", "datasets:\n  words: {imagefolder: words}\n").replace("on: printed", "on: words")
    (tiny_project.path / "robustness_specs" / "tiny.yaml").write_text(spec)
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-no-cache", "-k", "words")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(
        ["*dataset 'words' has classes [[]eight, five, four, nine, one, ...] but the model was trained on [[]0, 1, 2, 3, 4, ...]*"]
    )

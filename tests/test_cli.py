"""`robustgate validate` checks specs without building anything."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_spec_edits import edit

from robustgate.cli import main
from robustgate.data.imagefolder import PATH_HINT

ROOT = Path(__file__).resolve().parents[1]


def validate(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "robustgate.cli", "validate", *map(str, files)], capture_output=True, text=True, cwd=ROOT
    )


def test_valid_spec_is_summarised_and_exits_zero() -> None:
    result = validate(ROOT / "robustness_specs" / "quickstart.yaml")
    assert result.returncode == 0, result.stderr
    assert "ok: " in result.stdout and "(5 datasets, 2 models, 6 contracts, 8 items)" in result.stdout


def test_invalid_spec_reports_every_problem_and_exits_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("robustgate: 1\nmodel: {arch: x, weights: w.pt}\ndatasets: {}\ncontracts:\n  - acuracy: {on: y}\n")
    good = ROOT / "robustness_specs" / "quickstart.yaml"
    result = validate(bad, good)
    assert result.returncode == 1
    assert "bad.yaml:2: model: missing required key 'input'" in result.stderr
    assert "bad.yaml:5: contracts[0].acuracy: unknown contract kind 'acuracy': did you mean 'accuracy'?" in result.stderr
    assert "Traceback" not in result.stderr
    assert "ok: " in result.stdout  # the good file is still checked


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = validate(tmp_path / "nope.yaml")
    assert result.returncode == 1
    assert "nope.yaml: cannot read spec file: No such file or directory" in result.stderr


# --- what the specs point at: data, weights files, factories, class counts (one line each, then exit 1) ---------

SPEC = """robustgate: 1
model:
  arch: {arch}
  kwargs: {{num_classes: 3}}
  weights: {weights}
  input: {{size: [32, 32]}}
datasets:
  site-a: {{imagefolder: data/site_a}}
  site-b: {{imagefolder: {site_b}}}
contracts:
  - accuracy: {{on: site-b, min: 0.5}}
"""
FACTORY = """import torch


def build(num_classes=3):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, num_classes))
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user's project: pyproject.toml, a factory module, two ImageFolder sites of three classes and a state_dict;
    the working directory, so errors read spec.yaml:LINE. Modules the specs import are forgotten afterwards."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    (tmp_path / "mymodels.py").write_text(FACTORY)
    for site in ("site_a", "site_b"):
        for name in ("cat", "dog", "cow"):
            (tmp_path / "data" / site / name).mkdir(parents=True)
    namespace: dict[str, Any] = {}
    exec(FACTORY, namespace)
    torch.save(namespace["build"]().state_dict(), tmp_path / "w.pt")
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if not name.startswith(("robustgate", "torch", "torchvision")):
            del sys.modules[name]


def check(folder: Path, capsys: pytest.CaptureFixture[str], **fields: str) -> tuple[int, str, str]:
    """``robustgate validate spec.yaml`` on the spec written with ``fields``: exit status, stdout, stderr."""
    values = {"arch": "mymodels:build", "weights": "w.pt", "site_b": "data/site_b", **fields}
    (folder / "spec.yaml").write_text(SPEC.format(**values))
    status = main(["validate", "spec.yaml"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def test_a_spec_whose_data_weights_and_factory_are_there_is_ok(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = check(project, capsys)
    assert (status, err) == (0, "")
    assert out == "ok: spec.yaml (2 datasets, 1 models, 1 contracts, 1 items)\n"


def test_a_missing_data_folder(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = check(project, capsys, site_b="data/site_c")
    assert status == 1
    assert err == (f"spec.yaml:9: datasets.site-b.imagefolder: dataset folder '{project / 'data' / 'site_c'}' does not exist; "
                   f"{PATH_HINT}\n")


def test_a_missing_weights_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = check(project, capsys, weights="weights/best.pt")
    assert status == 1
    assert err == (f"spec.yaml:5: model.weights: weights file 'weights/best.pt' does not exist (looked for "
                   f"{project / 'weights' / 'best.pt'}); give the path of a state_dict saved with "
                   "torch.save(model.state_dict(), PATH), relative to the spec file, or use weights: train\n")


def test_an_empty_weights_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "empty.pt").write_bytes(b"")
    status, _, err = check(project, capsys, weights="empty.pt")
    assert status == 1
    assert err == ("spec.yaml:5: model.weights: weights file 'empty.pt' is empty (0 bytes): truncated or not a PyTorch "
                   "checkpoint; save it again with torch.save(model.state_dict(), PATH)\n")


def test_a_truncated_weights_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = (project / "w.pt").read_bytes()
    (project / "cut.pt").write_bytes(whole[: len(whole) // 2])  # an interrupted copy
    status, _, err = check(project, capsys, weights="cut.pt")
    assert status == 1
    assert err == (f"spec.yaml:5: model.weights: weights file 'cut.pt' is truncated or not a PyTorch checkpoint (a zip "
                   f"archive of {len(whole) // 2} bytes without its end); save it again with "
                   "torch.save(model.state_dict(), PATH)\n")


def test_a_file_that_is_no_checkpoint(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "notes.pt").write_text("accuracy 0.93\n")
    status, _, err = check(project, capsys, weights="notes.pt")
    assert status == 1
    assert err == ("spec.yaml:5: model.weights: weights file 'notes.pt' is truncated or not a PyTorch checkpoint (it "
                   "starts with b'accuracy', neither a zip archive nor a pickle); save it again with "
                   "torch.save(model.state_dict(), PATH)\n")


def test_a_checkpoint_in_the_format_before_torch_1_6_is_ok(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = torch.load(project / "w.pt", weights_only=True)
    torch.save(state, project / "legacy.pt", _use_new_zipfile_serialization=False)
    assert check(project, capsys, weights="legacy.pt")[0] == 0


def test_a_factory_module_that_does_not_exist(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = check(project, capsys, arch="netzoo:build")
    assert status == 1
    assert err == (f"spec.yaml:3: model.arch: cannot import 'netzoo' for arch 'netzoo:build': no such module in {project} or "
                   "the installed packages; put netzoo.py in one of those folders, or install the package that holds it\n")


def test_a_misspelt_factory_module(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = check(project, capsys, arch="mymodel:build")
    assert status == 1
    assert err == (f"spec.yaml:3: model.arch: cannot import 'mymodel' for arch 'mymodel:build': no such module in {project} or "
                   "the installed packages; did you mean 'mymodels:build'?\n")


def test_a_misspelt_factory_function(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = check(project, capsys, arch="mymodels:biuld")
    assert status == 1
    assert err == "spec.yaml:3: model.arch: 'mymodels' has no callable 'biuld'; did you mean 'build'?\n"


def test_a_factory_written_with_a_dot(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = check(project, capsys, arch="mymodels.build")
    assert status == 1
    assert err == ("spec.yaml:3: model.arch: 'mymodels.build' is neither a torchvision architecture nor a factory: a "
                   "factory is written module:function; did you mean 'mymodels:build'?\n")


def test_a_factory_module_that_fails_to_import(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "brokenmodels.py").write_text("import torch\n\nLAYERS = 3 +\n")
    status, _, err = check(project, capsys, arch="brokenmodels:build")
    assert status == 1
    assert err == ("spec.yaml:3: model.arch: importing 'brokenmodels' for arch 'brokenmodels:build' failed (at "
                   "brokenmodels.py:3): SyntaxError: invalid syntax (brokenmodels.py, line 3); fix brokenmodels; "
                   "`python -c 'import brokenmodels'` in its folder shows the traceback\n")


def test_a_factory_whose_own_import_is_missing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "timmmodels.py").write_text("import torch\nimport timm_not_installed\n\n\ndef build(): ...\n")
    status, _, err = check(project, capsys, arch="timmmodels:build")
    assert status == 1
    assert err == ("spec.yaml:3: model.arch: importing 'timmmodels' for arch 'timmmodels:build' failed (at timmmodels.py:2): "
                   "ModuleNotFoundError: No module named 'timm_not_installed'; install timm_not_installed, which "
                   "timmmodels imports\n")


def test_factory_kwargs_the_factory_does_not_take(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "fixedmodels.py").write_text(FACTORY.replace("num_classes=3", "classes=3").replace("num_classes)", "classes)"))
    status, _, err = check(project, capsys, arch="fixedmodels:build")
    assert status == 1
    assert err == ("spec.yaml:4: model.kwargs: fixedmodels:build(classes=3) does not take kwargs {'num_classes': 3}: got an "
                   "unexpected keyword argument 'num_classes'; give kwargs the factory's keyword arguments\n")


def test_a_factory_at_the_rootdir_imports_for_a_spec_in_a_subfolder(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = project / "robustness_specs"
    specs.mkdir()
    (specs / "site.yaml").write_text(edit(SPEC.format(arch="mymodels:build", weights="../w.pt", site_b="../data/site_b"), "data/site_a", "../data/site_a"))
    assert main(["validate", "robustness_specs"]) == 0
    assert capsys.readouterr().out == "ok: robustness_specs/site.yaml (2 datasets, 1 models, 1 contracts, 1 items)\n"


def test_class_folders_that_do_not_match_num_classes(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "data" / "site_b" / "pig").mkdir()
    status, _, err = check(project, capsys, arch="torchvision:resnet18")
    assert status == 1
    assert err == "spec.yaml:4: model.kwargs.num_classes: the model outputs 3 classes, but dataset 'site-b' has 4; set num_classes: 4\n"


def test_datasets_with_different_class_counts(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "data" / "site_b" / "pig").mkdir()  # a factory's num_classes means what its author made it mean
    status, _, err = check(project, capsys)
    assert status == 1
    assert err == ("spec.yaml:9: datasets.site-b: dataset 'site-b' has 4 classes, but 'site-a' has 3; a model outputs one "
                   "set of classes: give every dataset the same classes\n")


def test_a_data_folder_without_class_folders(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "flat").mkdir()
    status, _, err = check(project, capsys, site_b="flat")
    assert status == 1
    assert err == (f"spec.yaml:9: datasets.site-b.imagefolder: dataset folder '{project / 'flat'}' has no class folders; an "
                   "ImageFolder tree holds one sub-folder per class, named after the class, with that class's images "
                   "inside (root/<class>/<image>)\n")


def test_every_problem_of_a_spec_is_listed(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "empty.pt").write_bytes(b"")
    status, _, err = check(project, capsys, arch="mymodels:biuld", weights="empty.pt", site_b="data/site_c")
    assert status == 1
    assert err.splitlines()[0] == "3 problems in spec.yaml:"
    assert [line.split(": ")[0] for line in err.splitlines()[1:]] == ["  spec.yaml:3", "  spec.yaml:5", "  spec.yaml:9"]


# --- folders and exit statuses ------------------------------------------------------------------------------------


def test_a_folder_checks_every_spec_under_it_and_nothing_else(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nested = project / "specs" / "more"
    nested.mkdir(parents=True)
    (project / "specs" / "ci.yaml").write_text("jobs: {test: {runs-on: ubuntu-latest}}\n")  # YAML, but no spec
    (project / "specs" / ".hidden").mkdir()
    (project / "specs" / ".hidden" / "old.yaml").write_text("robustgate: 1\n")
    (nested / "bad.yml").write_text("robustgate: 1\nmodel: {arch: x, weights: w.pt}\ndatasets: {}\ncontracts:\n  - acuracy: {on: y}\n")
    (project / "specs" / "good.yaml").write_text(edit(SPEC.format(arch="mymodels:build", weights="../w.pt", site_b="../data/site_b"), "data/site_a", "../data/site_a"))
    status = main(["validate", "specs"])
    out, err = capsys.readouterr()
    assert status == 1
    assert out == "ok: specs/good.yaml (2 datasets, 1 models, 1 contracts, 1 items)\n"
    assert err.startswith("2 problems in specs/more/bad.yml:\n")
    assert "ci.yaml" not in out + err and "old.yaml" not in out + err


def test_the_shipped_specs_folder_is_ok(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["validate", "robustness_specs/"]) == 0
    out = capsys.readouterr().out
    assert "ok: robustness_specs/quickstart.yaml" in out and "ok: robustness_specs/office31_paper.yaml" in out


def test_a_folder_without_specs_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.yaml").write_text("a: 1\n")
    assert main(["validate", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (f"{tmp_path}: no spec files in this folder (YAML files with a top-level "
                                       "`robustgate:` key)\n")


def test_a_usage_error_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["validate"])
    assert exit_.value.code == 2
    assert "the following arguments are required: PATH" in capsys.readouterr().err


def test_torchvision_weights_that_are_not_on_this_machine(project: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(project / "torch-home"))
    expected = project / "torch-home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    (project / "spec.yaml").write_text(edit(SPEC.format(arch="torchvision:resnet18", weights="imagenet", site_b="data/site_b"), "  input:", "  train: {on: site-a, epochs: 1}\n  input:"))
    assert main(["validate", "spec.yaml"]) == 1
    assert capsys.readouterr().err == (
        f"spec.yaml:5: model.weights: ResNet18_Weights.IMAGENET1K_V1 for torchvision:resnet18 is not on this machine "
        f"(expected {expected}); run `robustgate fetch-weights resnet18` where there is network, or copy the file there\n")
    expected.parent.mkdir(parents=True)
    expected.write_bytes((project / "w.pt").read_bytes()[:100])  # a download cut short
    assert main(["validate", "spec.yaml"]) == 1
    assert capsys.readouterr().err == (
        f"spec.yaml:5: model.weights: weights file '{expected}' is truncated or not a PyTorch checkpoint (a zip archive "
        "of 100 bytes without its end); delete it and run `robustgate fetch-weights resnet18` again\n")


def test_validate_imports_neither_torch_nor_scipy() -> None:
    """Reading a spec needs the keys of its kinds, not the libraries that evaluate them (torch alone takes seconds)."""
    probe = (
        "import sys\nfrom robustgate.cli import main\ncode = main(['validate', 'robustness_specs/quickstart.yaml'])\n"
        "print(*sorted(sys.modules), sep='\\n')\nraise SystemExit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    imported = {"torch", "scipy"} & set(result.stdout.splitlines())
    assert not imported, f"validate imported {sorted(imported)}; `python -X importtime` shows which module did"

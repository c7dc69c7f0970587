"""The Office-31 paper spec as shipped (robustness_specs/office31_paper.yaml) on a tiny Office-31-shaped tree
written here, with seeded stand-in ImageNet weights under torchvision's file names in a temporary TORCH_HOME:
its profiles select the study's grid, its smoke profile runs every contract end to end, and without the
dataset every item skips with one message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torchvision
from office31_tree import office31_tree

from robustgate.models.pretrained import checkpoint_path, resolve
from robustgate.spec import load_cases

PAPER_SPEC = Path(__file__).resolve().parents[2] / "robustness_specs" / "office31_paper.yaml"
VARIANTS = {"baseline", "pruned-0.25", "pruned-0.5", "pruned-0.75", "distilled-r18", "int8"}


@pytest.fixture
def paper_project(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    folder = pytester.mkdir("robustness_specs")
    shutil.copy(PAPER_SPEC, folder / PAPER_SPEC.name)
    monkeypatch.setenv("OFFICE31_ROOT", str(office31_tree(tmp_path / "office31", domains=("amazon", "webcam", "dslr"))))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for arch in ("resnet18", "resnet34"):  # the smoke and cpu profiles' base models and student
        torch.manual_seed(0)
        path = checkpoint_path(resolve(arch, "imagenet"))  # what `robustgate fetch-weights ARCH` writes
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(torchvision.models.get_model(arch, weights=None).state_dict(), path)
    return pytester


def _collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", *args)
    return [line for line in result.stdout.lines if "::" in line]


def test_the_profiles_select_the_studys_grid(paper_project: pytest.Pytester) -> None:
    full = _collected(paper_project)
    cases = {line.split("::")[1] for line in full}
    assert cases == {f"{arch}-{source}" for arch in ("resnet18", "resnet34", "resnet50")
                     for source in ("amazon", "webcam", "dslr")}
    assert len(full) == 9 * 25  # per case: 2 baseline, 4 per pruned or distilled model, 5 on int8, 2 comparisons
    assert {line.split("::")[2] for line in full} == VARIANTS
    assert "robustness_specs/office31_paper.yaml::resnet50-webcam::int8::shift[webcam-test->amazon+dslr]" in full
    cpu = _collected(paper_project, "--robustgate-profile", "cpu")
    assert len(cpu) == 25 and {line.split("::")[1] for line in cpu} == {"resnet34-amazon"}
    deep = _collected(paper_project, "--robustgate-profile", "deep")
    assert {line.split("::")[1].split("-")[0] for line in deep} == {"resnet101", "resnet152"}


def test_the_smoke_profile_runs_every_contract_on_a_tiny_office31_tree(paper_project: pytest.Pytester) -> None:
    result = paper_project.runpytest("--robustgate-profile", "smoke", "-p", "no:cacheprovider")
    doc = json.loads((paper_project.path / "reports" / "results.json").read_text())
    items = {item["nodeid"].split("::", 2)[2]: item for item in doc["items"]}
    assert len(items) == 25 and {item["case"] for item in items.values()} == {"resnet18-amazon"}
    # every contract reached a verdict: on 4 images a class and one epoch some gates break, none errors; the
    # comparison with the resnet50 case, which the profile leaves out, skips
    across_cases = "pruned-0.25::compare[drop:pruned-0.25>resnet50-amazon/pruned-0.5@webcam+dslr]"
    assert items.pop(across_cases)["outcome"] == "skipped", result.stdout.str()
    assert {item["outcome"] for item in items.values()} <= {"passed", "failed"}, result.stdout.str()
    assert items["int8::compare[drop:int8>pruned-0.5@webcam+dslr]"]["metrics"]["n@webcam"] == 62
    assert doc["specs"]["robustness_specs/office31_paper.yaml"]["profile"] == "smoke"
    assert items["int8::size"]["outcome"] == "passed" and items["int8::size"]["metrics"]["size_ratio"] < 0.3
    shift = items["int8::shift[amazon-test->webcam+dslr]"]["metrics"]
    assert shift["n@webcam"] == 62 and shift["n@dslr"] == 62  # the profile's sampled targets
    assert shift["source_n"] == 31  # a stratified fifth of amazon's 4 images a class: one of each class
    distilled = items["distilled-r18::attack[pgd:1/255+4/255@amazon-attack]"]["metrics"]
    assert distilled["n@1/255"] == 31 and distilled["params_ratio"] == pytest.approx(1.0)  # a ResNet-18 from a ResNet-18
    assert items["pruned-0.5::shift[amazon-test->webcam+dslr]"]["metrics"]["params_ratio"] < 0.35
    assert (paper_project.path / "reports" / "report.html").stat().st_size > 10_000


def test_the_cpu_profile_is_the_studys_first_experiment_at_cpu_scale() -> None:
    """What the cpu profile runs, read off the parsed spec. Running it takes 8 minutes even on the tiny tree (its
    attacks at 144 px); benchmarks/bench_office31_cpu_profile.py times it on an Office-31-sized tree, and the smoke
    profile runs the same contracts here."""
    (case,) = load_cases(PAPER_SPEC, "cpu")
    assert case.case == "resnet34-amazon" and case.device == "cpu"
    assert case.model.arch == "resnet34" and case.model.weights == "imagenet"
    assert case.model.input.size == (144, 144) and case.model.train is not None and case.model.train.epochs == 5
    assert {name: case.datasets[name].params.samples for name in ("amazon-attack", "webcam", "dslr")} == {
        "amazon-attack": 64, "webcam": 300, "dslr": 300}
    assert set(case.variants) == VARIANTS - {"baseline"}
    (distill,) = case.variants["distilled-r18"].steps
    assert distill.params.student.arch == "resnet18" and distill.params.epochs == 3  # a smaller student
    shift = next(c for c in case.contracts if c.kind == "shift")
    assert (shift.params.source, shift.params.targets) == ("amazon-test", ["webcam", "dslr"])


def test_without_the_dataset_every_item_skips_with_one_message(paper_project: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OFFICE31_ROOT")
    result = paper_project.runpytest("--robustgate-profile", "cpu", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=25)
    result.stdout.fnmatch_lines(["SKIPPED [[]25[]] *datasets amazon-train, amazon-test, amazon, webcam, dslr not on this "
                                 "machine (missing: skip): environment variable OFFICE31_ROOT is not set*"])

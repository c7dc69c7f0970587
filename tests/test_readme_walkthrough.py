"""The README's "Gate your own model" walkthrough, run as written: its factory and spec blocks, on
ImageFolder trees of digit images, with weights trained and saved the way a team saves its own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustgate.data.digits import load_digits_domain
from robustgate.data.resize import to_model_geometry
from robustgate.data.splits import stratified_part

README = Path(__file__).resolve().parents[1] / "README.md"
CLASSES = ["zero", "one", "two", "three"]


def walkthrough_files() -> dict[str, str]:
    """``path -> text`` of every fenced block of the walkthrough that names its file (```yaml file=PATH)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Gate your own model", 1)[1].split("\n## ", 1)[0]
    return {path: body for path, body in re.findall(r"```\w+ file=(\S+)\n(.*?)```", section, flags=re.DOTALL)}


def write_tree(root: Path, domain: str, part: str | None) -> None:
    """Digits 0-3 of ``domain`` (a ``part`` of them, or all) as 32x32 PNGs under ``root/<class>/``."""
    images, labels, _ = load_digits_domain(domain)
    images = to_model_geometry(images, (32, 32), 3)
    keep = torch.nonzero(labels < len(CLASSES)).flatten()
    images, labels = images[keep], labels[keep]
    if part is not None:
        index = stratified_part(labels, part, 0.8, 0)
        images, labels = images[index], labels[index]
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / CLASSES[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.permute(1, 2, 0).numpy().astype(np.uint8)).save(folder / f"{i}.png")


def train_and_save(project: Path) -> None:
    """What a team does before robustgate: train its model on its own images and save the state_dict."""
    import sys

    sys.path.insert(0, str(project / "robustness_specs"))
    try:
        import mymodels
    finally:
        sys.path.remove(str(project / "robustness_specs"))
    folder = project / "data" / "site-a" / "train"
    paths = sorted(folder.glob("*/*.png"))
    images = torch.stack([torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1) for p in paths]).float() / 255
    labels = torch.tensor([sorted(CLASSES).index(p.parent.name) for p in paths])  # ImageFolder's label order
    torch.manual_seed(0)
    model = mymodels.build(num_classes=len(CLASSES))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(8):
        for batch in torch.randperm(len(labels)).split(32):
            loss = torch.nn.functional.cross_entropy(model((images[batch] - 0.5) / 0.25), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():  # BatchNorm's running statistics, re-estimated on the final weights (as torch's update_bn)
        for layer in model.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.reset_running_stats()
                layer.momentum = None
        model((images - 0.5) / 0.25)
    (project / "robustness_specs" / "weights").mkdir()
    torch.save(model.eval().state_dict(), project / "robustness_specs" / "weights" / "mymodel.pt")
    del sys.modules["mymodels"]  # the run must import it itself, from beside the spec


def test_the_walkthrough_gates_a_teams_own_model_end_to_end(pytester: pytest.Pytester) -> None:
    files = walkthrough_files()
    assert set(files) == {"robustness_specs/mymodels.py", "robustness_specs/own-model.yaml"}
    for path, body in files.items():
        (pytester.path / path).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / path).write_text(body)
    write_tree(pytester.path / "data" / "site-a" / "train", "handwritten", "train")
    write_tree(pytester.path / "data" / "site-a" / "test", "handwritten", "test")
    write_tree(pytester.path / "data" / "site-b", "printed", None)
    train_and_save(pytester.path)

    result = pytester.runpytest("-p", "no:cacheprovider", "--robustgate-cache-dir=cache", "robustness_specs/")

    out = result.stdout.str()
    assert "Traceback" not in out and "ERROR" not in out, out[-4000:]
    result.assert_outcomes(passed=6)  # the baseline's accuracy and the five int8 contracts
    doc = json.loads((pytester.path / "reports" / "results.json").read_text())
    int8 = {item["contract"]: item for item in doc["items"] if item["model"] == "int8"}
    drop = next(g for g in int8["accuracy[site-a]"]["gates"] if g["metric"] == "drop")
    chance = next(g for g in int8["accuracy[site-a]"]["gates"] if g["metric"] == "baseline_above_chance@site-a")
    assert drop["passed"] and chance["passed"] and chance["estimate"] > 0.8  # the baseline's own accuracy is there
    assert int8["attack[pgd:2/255@site-a]"]["metrics"]["n"] == 100

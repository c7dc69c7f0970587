"""Wall time of the Office-31 paper spec's CPU profile at Office-31's scale, on this machine.

    .venv/bin/python benchmarks/bench_office31_cpu_profile.py [--profile cpu] [--work DIR] [--keep]

Office-31 itself cannot be shipped or downloaded here, and run time depends on how many images of what size
are decoded, trained on and attacked, not on what they show. So this writes a stand-in with Office-31's
shape (31 classes; amazon 2,817 images of 300x300, webcam 795 of 640x480, dslr 498 of 1000x1000; classes of
7 to 100 images, unbalanced) and seeded stand-in ImageNet weights for the profile's architectures under
torchvision's file names, then runs ``pytest robustness_specs/office31_paper.yaml --robustgate-profile cpu``
cold (empty cache) and prints where the time went, from results.json. Accuracies on random pixels mean
nothing: the table is about time. Exits 1 when an item could not reach a verdict (an error, not a gate
that broke). ``--device cuda`` runs the profile on a GPU (scripts/gpu_check.sh's smoke step).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cold_estimate import estimated_phases

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "robustness_specs" / "office31_paper.yaml"
# (images, width, height) per domain, as in the standard release
DOMAINS = {"amazon": (2817, 300, 300), "webcam": (795, 640, 480), "dslr": (498, 1000, 1000)}


def class_counts(total: int, classes: int, rng: np.random.Generator) -> list[int]:
    """``classes`` unbalanced counts of at least 7 that add up to ``total``."""
    weights = rng.uniform(0.3, 1.0, classes)
    counts = np.maximum(7, np.floor(weights / weights.sum() * total)).astype(int)
    for i in range(total - counts.sum()):  # hand out the remainder
        counts[i % classes] += 1
    return counts.tolist()


def write_tree(root: Path, seed: int = 0) -> int:
    from robustgate.data.office31 import OFFICE31_CLASSES

    rng = np.random.default_rng(seed)
    written = 0
    for domain, (total, width, height) in DOMAINS.items():
        for name, count in zip(OFFICE31_CLASSES, class_counts(total, len(OFFICE31_CLASSES), rng)):
            folder = root / domain / "images" / name
            folder.mkdir(parents=True)
            for k in range(count):
                # smooth colour fields plus noise: JPEGs of photo-like size, not flat ones that decode for free
                base = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
                image = Image.fromarray(base).resize((width, height), Image.BILINEAR)
                noisy = np.clip(np.asarray(image, dtype=np.int16) + rng.integers(-12, 13, (height, width, 3)), 0, 255)
                Image.fromarray(noisy.astype(np.uint8)).save(folder / f"frame_{k:04d}.jpg", quality=90)
                written += 1
    return written


def write_weights(torch_home: Path, archs: list[str]) -> None:
    import torch
    import torchvision

    from robustgate.models.pretrained import checkpoint_path, resolve

    os.environ["TORCH_HOME"] = str(torch_home)
    for arch in archs:
        torch.manual_seed(0)
        path = checkpoint_path(resolve(arch, "imagenet"))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(torchvision.models.get_model(arch, weights=None).state_dict(), path)


def on_device(spec: Path, profile: str, device: str, work: Path) -> Path:
    """A copy of ``spec`` in ``work`` whose ``profile`` runs on ``device`` (the profiles say `device: cpu`)."""
    text = spec.read_text()
    line = f"  {profile}:\n    device: cpu\n"
    if line not in text:
        sys.exit(f"profile {profile} of {spec} does not start with `device: cpu`: cannot move it to {device}")
    work.mkdir(parents=True, exist_ok=True)
    copy = work / spec.name
    copy.write_text(text.replace(line, f"  {profile}:\n    device: {device}\n"))
    return copy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--work", type=Path, default=None, help="folder for the tree, weights, cache and reports")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--device", default=None, help="run the profile on this device instead of its own (cuda)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="office31-bench-"))
    spec = on_device(SPEC, args.profile, args.device, work) if args.device else SPEC
    tree, torch_home = work / "office31", work / "torch-home"
    if not tree.exists():
        started = time.perf_counter()
        count = write_tree(tree)
        print(f"wrote {count} stand-in images in {time.perf_counter() - started:.0f} s")
    from robustgate.spec import load_cases

    archs = sorted({case.model.arch for case in load_cases(spec, args.profile)}
                   | {v.steps[0].params.student.arch for case in load_cases(spec, args.profile)
                      for v in case.variants.values() if v.steps[0].kind == "distill"})
    write_weights(torch_home, archs)
    shutil.rmtree(work / "cache", ignore_errors=True)
    env = {**os.environ, "OFFICE31_ROOT": str(tree), "TORCH_HOME": str(torch_home)}
    os.environ.update(OFFICE31_ROOT=str(tree), TORCH_HOME=str(torch_home))
    estimated, took = estimated_phases(spec, args.profile)
    command = [sys.executable, "-m", "pytest", str(spec), "--robustgate-profile", args.profile, "-p", "no:cacheprovider",
               f"--robustgate-cache-dir={work / 'cache'}", f"--robustgate-report={work / 'reports'}", "-q"]
    started = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    doc = json.loads((work / "reports" / "results.json").read_text())
    outcomes = {}
    for item in doc["items"]:
        outcomes[item["outcome"]] = outcomes.get(item["outcome"], 0) + 1
    print(f"profile {args.profile}: {len(doc['items'])} items {outcomes}, pytest exit {run.returncode}, "
          f"cpu {doc['environment'].get('cpu', '?')}")
    print(f"{'phase':<14}{'seconds':>9}{'estimate':>10}   (the cold-cost estimate, made in {took:.0f} s before the run)")
    for key, seconds in sorted(doc["timings"].items(), key=lambda kv: -kv[1]):
        phase = key.removesuffix("_seconds")
        guess = f"{estimated[phase]:10.0f}" if phase in estimated else ""
        print(f"{phase:<14}{seconds:9.0f}{guess}")
    print(f"{'wall (cold)':<14}{wall:9.0f}")
    # gates that break on random pixels are expected; an item that could not reach a verdict is not
    errors = [item for item in doc["items"] if item["outcome"] == "error"]
    for item in errors:
        print(f"error: {item['nodeid']}: {item.get('message', '')[:300]}")
    if not args.keep:
        shutil.rmtree(work)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())

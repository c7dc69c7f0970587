"""Throughput of robustgate's torch corruptions against the `imagecorruptions` package.

    .venv/bin/python benchmarks/bench_corruptions_reference.py [--sizes 32 224] [--batch 64]
        [--severity 3] [--runs 3] [--threads 1] [--max-seconds 20] [--venv PATH]

What is measured: images/s for each corruption both sides have, at each size, on the
same random-but-fixed uint8 images (numpy seed 0), uint8 in and uint8 out on both sides:
robustgate through ``corrupt()`` on one N x 3 x H x W set, as its runs do (a corruption
registered for the uint8 grid, such as JPEG, runs there; the others in float chunks),
imagecorruptions (1.1.2, the last release) one H x W x 3 image at a time, as it works. Median of --runs timed runs after one warm-up call on a
single image. A cell whose warm-up says the batch would take longer than --max-seconds
is timed on fewer images (at least 2); the table then shows the count it used. Both
sides run on --threads threads (torch intra-op; OMP/OpenBLAS/MKL and OpenCV for the
reference), 1 by default so that the comparison is per core.

Why a throwaway venv: imagecorruptions is no dependency of robustgate, and some of its
corruptions are broken on numpy 2, which is the point of comparing against it at all.
The script installs it with numpy 2 into --venv (created on first use, reused after;
delete it to rebuild) and runs the timing worker there in a subprocess, so robustgate's
.venv is left alone. The reference corruptions that raise are listed with their error:
`np.float_` is numpy 2 itself; `multichannel` is scikit-image, which removed that
argument in 0.19, older than any scikit-image that runs on numpy 2.
Caveat at sizes other than 224: robustgate scales its length constants (blur radii) by
size / 224, imagecorruptions does not, so at 32x32 its blurs use larger kernels (more work).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from robustgate.data.corruptions import corrupt, corruptions
from robustgate.data.imageset import ImageSet

REFERENCE = "imagecorruptions==1.1.2"
DEFAULT_VENV = Path("/tmp/robustgate-imagecorruptions-venv")

# Runs under the throwaway venv's python; it must not import robustgate (it can't: it
# is not installed there). argv[1]: JSON settings; prints JSON results on stdout.
WORKER = r"""
import json, statistics, sys, time, warnings
from importlib.metadata import version
import numpy as np
from imagecorruptions import corrupt, get_corruption_names

warnings.simplefilter("ignore")  # scipy/skimage deprecation chatter
cfg = json.loads(sys.argv[1])
try:
    import cv2
    cv2.setNumThreads(cfg["threads"])
except ImportError:
    pass


def failure(error):
    return f"{type(error).__name__}: {error}".splitlines()[0]


def cell(name, images):
    # [images/s, images timed], or the error's first line
    np.random.seed(0)
    try:
        start = time.perf_counter()
        corrupt(images[0], corruption_name=name, severity=cfg["severity"])  # warm-up
        first = time.perf_counter() - start
    except Exception as error:
        return failure(error)
    n = max(2, min(len(images), int(cfg["max_seconds"] / (cfg["runs"] * max(first, 1e-9)))))
    times = []
    for _ in range(cfg["runs"]):
        start = time.perf_counter()
        for image in images[:n]:
            corrupt(image, corruption_name=name, severity=cfg["severity"])
        times.append(time.perf_counter() - start)
    return [n / statistics.median(times), n]


names = get_corruption_names("all")
results = {name: {} for name in names}
for size in cfg["sizes"]:
    images = np.random.default_rng(0).integers(0, 256, (cfg["batch"], size, size, 3), dtype=np.uint8)
    for name in names:
        if name in cfg["names"]:
            results[name][size] = cell(name, images)
        else:  # not compared: one call, only to tell whether it works
            try:
                corrupt(images[0], corruption_name=name, severity=cfg["severity"])
                results[name][size] = None
            except Exception as error:
                results[name][size] = failure(error)
packages = ["imagecorruptions", "numpy", "scikit-image", "scipy", "opencv-python"]
print(json.dumps({"versions": {p: version(p) for p in packages}, "results": results}))
"""


def reference_python(venv: Path) -> Path:
    """The throwaway venv's python with imagecorruptions and numpy 2, made if needed."""
    python = venv / "bin" / "python"
    check = "import importlib.metadata as m, numpy; print(m.version('imagecorruptions'), numpy.__version__)"
    if python.exists():
        found = subprocess.run([python, "-c", check], capture_output=True, text=True)
        if found.returncode == 0:
            package, numpy_version = found.stdout.split()
            if package == REFERENCE.split("==")[1] and int(numpy_version.split(".")[0]) >= 2:
                return python
    print(f"creating {venv} with {REFERENCE} and numpy 2 (throwaway; not a robustgate dependency) ...", flush=True)
    for command in ([sys.executable, "-m", "venv", "--clear", venv], [python, "-m", "pip", "install", REFERENCE, "numpy>=2"]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(map(str, command))} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return python


def run_reference(python: Path, names: list[str], args: argparse.Namespace) -> dict:
    cfg = {k: getattr(args, k) for k in ("sizes", "batch", "severity", "runs", "threads", "max_seconds")}
    cfg["names"] = names
    env = dict(os.environ, **{v: str(args.threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    done = subprocess.run([python, "-c", WORKER, json.dumps(cfg)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"reference worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def robustgate_cell(name: str, pixels: torch.Tensor, args: argparse.Namespace) -> list | str:
    """[images/s, images timed] for one corruption at one size, or the error's first line."""
    def images(n: int) -> ImageSet:
        return ImageSet(pixels[:n], torch.zeros(n, dtype=torch.long), ("blank",))

    try:
        start = time.perf_counter()
        corrupt(images(1), name, args.severity, seed=0)  # warm-up
        first = time.perf_counter() - start
    except Exception as error:  # a corruption still being written must not stop the table
        return f"{type(error).__name__}: {error}".splitlines()[0]
    n = max(2, min(len(pixels), int(args.max_seconds / (args.runs * max(first, 1e-9)))))
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        corrupt(images(n), name, args.severity, seed=0)
        times.append(time.perf_counter() - start)
    return [n / statistics.median(times), n]


def as_speedup(ratio: float) -> str:
    return f"{ratio:,.1f}x" if ratio >= 1 else f"{ratio:.2f}x"


def show(cell: list | str | None, batch: int) -> str:
    if not isinstance(cell, list):
        return "fails"
    rate, n = cell
    return f"{rate:,.1f}" + (f" (n={n})" if n < batch else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=20.0, help="rough time budget of one cell")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="throwaway venv for imagecorruptions")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    python = reference_python(args.venv)
    print(f"timing imagecorruptions under {python} ...", flush=True)
    reference = run_reference(python, corruptions.names(), args)
    ref = reference["results"]
    shared = [name for name in corruptions.names() if name in ref]
    versions = reference["versions"]
    print("reference: " + ", ".join(f"{package} {version}" for package, version in versions.items()))
    print(f"robustgate: torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"batch {args.batch}, severity {args.severity}, median of {args.runs}, <= ~{args.max_seconds:g} s a cell")
    header = f"{'corruption':<18}{'size':>6}{'robustgate img/s':>22}{'imagecorruptions img/s':>26}{'speed-up':>10}"
    print(header)
    print("-" * len(header))
    speedups = {}
    for name in shared:
        for size in args.sizes:
            images = torch.from_numpy(
                np.random.default_rng(0).integers(0, 256, (args.batch, size, size, 3), dtype=np.uint8)
            ).permute(0, 3, 1, 2).contiguous()  # the worker's images, as one N x 3 x H x W uint8 set
            ours, theirs = robustgate_cell(name, images, args), ref[name][str(size)]
            ratio = "-"
            if isinstance(ours, list) and isinstance(theirs, list):
                speedups[name, size] = ours[0] / theirs[0]
                ratio = as_speedup(speedups[name, size])
            elif isinstance(ours, str):
                ratio = f"  robustgate: {ours}"
            print(f"{name:<18}{size:>6}{show(ours, args.batch):>22}{show(theirs, args.batch):>26}{ratio:>10}", flush=True)

    if speedups:
        (worst_name, worst_size), worst = min(speedups.items(), key=lambda item: item[1])
        per_size = ", ".join(
            f"{s}: {as_speedup(statistics.median(v for (_, size), v in speedups.items() if size == s))}"
            for s in args.sizes
            if any(size == s for _, size in speedups)
        )
        print(f"\nspeed-up over {len(speedups)} cells both can run: median {as_speedup(statistics.median(speedups.values()))} "
              f"({per_size}), min {as_speedup(worst)} ({worst_name} at {worst_size})")
    print(f"only in robustgate: {', '.join(n for n in corruptions.names() if n not in ref) or '-'}")
    print(f"only in imagecorruptions: {', '.join(n for n in ref if n not in shared) or '-'}")
    failures = {name: e for name, cells in ref.items() for e in cells.values() if isinstance(e, str)}
    print(f"imagecorruptions fails on numpy {versions['numpy']} (scikit-image {versions['scikit-image']}): "
          f"{', '.join(failures) or '-'}")
    for name, error in failures.items():
        print(f"  {name}: {error}")


if __name__ == "__main__":
    main()

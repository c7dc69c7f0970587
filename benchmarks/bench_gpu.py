"""GPU against CPU on one machine: a training epoch, PGD-10, a 15 x 5 corruption contract and a cold quickstart,
and the peak GPU memory of the paper spec's 224 px ResNet-50.

    python benchmarks/bench_gpu.py [--device cuda] [--repeats 3] [--skip-pytest]

Each row times the same work through robustgate on the CPU and on ``--device`` in one process (the pytest rows
in fresh processes with empty caches), and prints seconds and the CPU/GPU ratio (medians of ``--repeats``; the
pytest rows run once each: they take minutes on the CPU).

- training epoch: the quickstart's ResNet-18 on the 1,438 training digits at 32 px (train_classifier, batch 64).
- PGD-10: robustgate's attack runner on that network (random weights: time does not depend on them), 359 digits,
  eps 8/255, batch as the runner's.
- corruption contract: the quickstart spec with one `corruptions: {suite: common}` contract (15 x 5 on 359 digits,
  two models), pytest wall time, cold cache, `device:` set in the spec.
- quickstart: robustness_specs/quickstart.yaml with `device:` set, pytest wall time, cold cache.
- peak memory: one training step (batch 32) and one PGD step (batch 128) of ResNet-50 at 224 px with 31 classes,
  torch.cuda.max_memory_allocated.

Written for scripts/gpu_check.sh; runs on the CPU alone too (--device cpu), which only checks that it works.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision

from robustgate.attacks import AttackSettings
from robustgate.attacks.protocol import robust_correct
from robustgate.cache import ArtifactCache
from robustgate.data.imageset import ImageSet
from robustgate.evaluation import SpecEvaluation
from robustgate.models.classifier import Classifier, Normalize
from robustgate.models.train import train_classifier
from robustgate.spec import load_spec
from robustgate.spec.model import TrainParams

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "robustness_specs" / "quickstart.yaml"
CORRUPTIONS = "  - corruptions: {on: handwritten, suite: common, max_relative_mce: 1.5}\n"


def synchronized(device: torch.device, work: Callable[[], object]) -> float:
    """Seconds of ``work`` on ``device``, its queued kernels included."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


@functools.lru_cache(maxsize=None)  # read once: each row asks for it on every repeat
def digits(name: str) -> ImageSet:
    """The quickstart's dataset ``name`` at its model's 32 px."""
    return SpecEvaluation.build(load_spec(QUICKSTART), ArtifactCache(None)).datasets[name]


def resnet18() -> Classifier:
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10)
    return Classifier(Normalize((0.5,) * 3, (0.25,) * 3), net)


def training_epoch(device: torch.device) -> float:
    train = digits("digits-train")
    params = TrainParams(on="digits-train", epochs=1, lr=1e-3, batch_size=64)
    return synchronized(device, lambda: train_classifier(resnet18(), train, params, seed=0, device=device,
                                                         progress=lambda _: None))


def pgd10(device: torch.device) -> float:
    test = digits("handwritten")
    model = resnet18().to(device).eval()
    settings = AttackSettings(8 / 255, "Linf", 10, None, 1)
    images = test.floats()
    return synchronized(device, lambda: robust_correct("pgd", settings, model, None, images, test.labels,
                                                       seed=0, queries=0))


def pytest_wall(device: str, contracts: str | None) -> float:
    """Wall time of a cold pytest run of the quickstart (or its head with ``contracts``) on ``device``."""
    text = QUICKSTART.read_text()
    assert "seed: 0\n" in text, "the quickstart no longer says seed: 0: put device: elsewhere"
    text = text.replace("seed: 0\n", f"seed: 0\ndevice: {device}\n", 1)
    if contracts is not None:
        text = text[: text.index("contracts:")] + "contracts:\n" + contracts
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(text)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", str(spec), "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
             f"--robustgate-cache-dir={Path(tmp) / 'cache'}", f"--robustgate-report={Path(tmp) / 'reports'}"],
            cwd=tmp, capture_output=True, text=True,
        )
        wall = time.perf_counter() - start
    if done.returncode != 0:
        print(f"pytest on {device} exited {done.returncode}:\n{done.stdout[-2500:]}\n{done.stderr[-1500:]}")
    return wall


def peak_memory_mb(device: torch.device) -> tuple[float, float]:
    """Peak GPU memory (MB) of one ResNet-50 training step at batch 32 and one PGD step at batch 128, 224 px."""
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=31).to(device)
    peaks = []
    for batch, train in ((32, True), (128, False)):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        x = torch.rand(batch, 3, 224, 224, device=device, requires_grad=not train)
        y = torch.randint(0, 31, (batch,), device=device)
        model.train(train)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) / 2**20)
        model.zero_grad(set_to_none=True)
    return peaks[0], peaks[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-pytest", action="store_true", help="leave out the two pytest rows (minutes on the CPU)")
    args = parser.parse_args()
    gpu, cpu = torch.device(args.device), torch.device("cpu")
    name = torch.cuda.get_device_name(gpu) if gpu.type == "cuda" else "cpu"
    print(f"{name} against the CPU ({torch.get_num_threads()} torch threads), torch {torch.__version__}")
    print(f"{'work':<34}{'cpu s':>9}{'gpu s':>9}{'cpu/gpu':>9}")
    rows: list[tuple[str, Callable[[torch.device], float]]] = [("training epoch (R18, 32 px)", training_epoch),
                                                              ("PGD-10 (R18, 359 digits)", pgd10)]
    for label, work in rows:
        work(gpu)  # warm-up: cuDNN's autotuning and CUDA's context are not the work
        on_cpu = statistics.median(work(cpu) for _ in range(args.repeats))
        on_gpu = statistics.median(work(gpu) for _ in range(args.repeats))
        print(f"{label:<34}{on_cpu:9.2f}{on_gpu:9.2f}{on_cpu / on_gpu:8.1f}x", flush=True)
    if not args.skip_pytest:
        for label, contracts in (("corruption contract 15x5 (cold)", CORRUPTIONS), ("quickstart (cold)", None)):
            on_cpu, on_gpu = pytest_wall("cpu", contracts), pytest_wall(args.device, contracts)
            print(f"{label:<34}{on_cpu:9.1f}{on_gpu:9.1f}{on_cpu / on_gpu:8.1f}x", flush=True)
    if gpu.type == "cuda":
        train, attack = peak_memory_mb(gpu)
        print(f"peak GPU memory, ResNet-50 at 224 px: training step (batch 32) {train:,.0f} MB, "
              f"PGD step (batch 128) {attack:,.0f} MB")


if __name__ == "__main__":
    main()

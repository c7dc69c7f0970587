"""PGD-10 throughput through robustgate's attack runner against a hand-written torchattacks loop,
and the wall time of the int8 protocol relative to a plain PGD on the fp32 model.

    .venv/bin/python benchmarks/bench_attack_throughput.py [--repeats 5] [--threads 2]

Model: the quickstart baseline (ResNet-18 trained on the digits at 32x32, from the cache) and
its int8 variant; data: the handwritten test part (359 images); batch 128 on both sides; eps
8/255, step 2/255. Harness and hand-written loop alternate within each repeat; the ratio is the
median of per-repeat ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torchattacks

from robustgate.attacks import AttackSettings, attack_kinds
from robustgate.attacks.protocol import robust_correct
from robustgate.attacks.run import BATCH, attacked_correct
from robustgate.cache import ArtifactCache
from robustgate.spec import load_spec
from robustgate.evaluation import SpecEvaluation

ROOT = Path(__file__).resolve().parents[1]
EPS, ALPHA, STEPS = 8 / 255, 2 / 255, 10


def hand_written(model, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    attack = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=STEPS, random_start=True)
    correct = []
    for start in range(0, len(images), BATCH):
        x, y = images[start : start + BATCH], labels[start : start + BATCH]
        adversarial = attack(x, y)
        with torch.no_grad():
            correct.append(model(adversarial).argmax(1) == y)
    return torch.cat(correct)


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = load_spec(ROOT / "robustness_specs" / "quickstart.yaml")
    evaluation = SpecEvaluation.build(spec, ArtifactCache(ROOT / ".robustgate-cache"), print)
    fp32, int8 = evaluation.models.baseline().model, evaluation.models.model("int8").model
    data = evaluation.datasets["handwritten"]
    images, labels = data.floats(), data.labels
    settings = AttackSettings(EPS, "Linf", STEPS, ALPHA, 1)
    harness_pgd = attack_kinds.get("pgd").build(fp32, settings, 0)

    harness, manual, protocol = [], [], []
    for _ in range(args.repeats):
        harness.append(timed(lambda: attacked_correct(harness_pgd, fp32, fp32, images, labels, 0)))
        manual.append(timed(lambda: hand_written(fp32, images, labels)))
    for _ in range(max(1, args.repeats // 2)):
        protocol.append(timed(lambda: robust_correct("pgd", settings, int8, fp32, images, labels, 0, queries=200)))

    n = len(images)
    print(f"torch {torch.__version__}, {args.threads} threads, {n} images, batch {BATCH}, PGD-{STEPS} at 8/255")
    print(f"{'':<38}{'median s':>10}{'images/s':>10}")
    for name, times in (("harness (robustgate attacked_correct)", harness), ("hand-written torchattacks loop", manual)):
        print(f"{name:<38}{statistics.median(times):>10.2f}{n / statistics.median(times):>10.1f}")
    ratio = statistics.median(m / h for h, m in zip(harness, manual))
    print(f"throughput ratio harness / hand-written (median of {args.repeats} pairs): {ratio:.3f}")
    print(
        f"int8 protocol (twin PGD + transfer PGD + Square-200, scored on int8): {statistics.median(protocol):.2f} s, "
        f"{statistics.median(protocol) / statistics.median(manual):.2f}x a plain PGD-10 on the fp32 model"
    )


if __name__ == "__main__":
    main()

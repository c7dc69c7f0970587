"""channels_last against contiguous memory for fp32 CPU work: prediction, a PGD step and a training step.

    .venv/bin/python benchmarks/bench_channels_last.py [--repeats 7] [--threads 2]

Random-weight torchvision models at the quickstart's geometry (ResNet-18, 32 px, batch 256 to predict, 128 to
attack, 64 to train) and the study's (ResNet-50 and MobileNetV3-large at 224 px, batches 32 / 16 / 16). Both
layouts alternate within each repeat; the ratio is the median of per-repeat ratios (contiguous / channels_last,
above 1: channels_last is faster). Also prints the largest logit difference between the layouts (another
kernel, other bits in the last place) and whether the predicted classes agree.

robustgate adopts channels_last for fp32 prediction (ModelStore.prediction_copy). Not yet for attacks (it pays
there too, but the attacked copy is the model compressors read, and adversarial images would change in their
last bits: a change to make with the attack results checked) nor for training (it loses on the quickstart's
ResNet-18 at 32 px, and the trained weights' bits are part of every cached artifact's key).

Run of 2026-12-04 (AMD EPYC, AVX2, 2 threads, 7 repeats): predict 1.68x / 1.49x / 1.40x, PGD step
1.46x / 1.28x / 1.21x, train step 0.84x / 1.25x / 1.49x (ResNet-18 @32, ResNet-50 @224, MobileNetV3-large @224).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torchvision
from torch.nn import functional as F

CASES = (  # name, builder, pixels, predict batch, attack batch, train batch
    ("resnet18 @32", torchvision.models.resnet18, 32, 256, 128, 64),
    ("resnet50 @224", torchvision.models.resnet50, 224, 32, 16, 16),
    ("mobilenet_v3_large @224", torchvision.models.mobilenet_v3_large, 224, 32, 16, 16),
)


def predict(model: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        model(x)


def pgd_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    (x + grad.sign() / 255).clamp(0, 1)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def bench_case(name: str, build, pixels: int, n_predict: int, n_attack: int, n_train: int, repeats: int) -> None:
    torch.manual_seed(0)
    base = build(num_classes=10).eval()
    layouts = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
    models = {k: copy.deepcopy(base).to(memory_format=f) for k, f in layouts.items()}
    generator = torch.Generator().manual_seed(0)
    batches = {n: torch.rand(n, 3, pixels, pixels, generator=generator) for n in {n_predict, n_attack, n_train}}
    labels = {n: torch.randint(0, 10, (n,), generator=generator) for n in batches}

    def x(n: int, layout: str) -> torch.Tensor:
        return batches[n].contiguous(memory_format=layouts[layout])

    with torch.inference_mode():
        a, b = (models[k](x(n_predict, k)) for k in layouts)
    agree = bool((a.argmax(1) == b.argmax(1)).all())
    trained = {k: copy.deepcopy(m).train() for k, m in models.items()}
    optimizers = {k: torch.optim.AdamW(m.parameters(), 1e-3) for k, m in trained.items()}
    works = {
        "predict": lambda k: predict(models[k], x(n_predict, k)),
        "pgd step": lambda k: pgd_step(models[k], x(n_attack, k), labels[n_attack]),
        "train step": lambda k: train_step(trained[k], optimizers[k], x(n_train, k), labels[n_train]),
    }
    for work, run in works.items():
        for k in layouts:
            run(k)  # warm-up: oneDNN picks and caches its kernels
        seconds: dict[str, list[float]] = {k: [] for k in layouts}
        for _ in range(repeats):
            for k in layouts:
                seconds[k].append(timed(run, k))
        ratio = statistics.median(c / l for c, l in zip(seconds["contiguous"], seconds["channels_last"]))
        c, l = (statistics.median(seconds[k]) * 1e3 for k in layouts)
        print(f"{name:<26}{work:<10}{c:>14.1f}{l:>17.1f}{ratio:>7.2f}x")
    print(f"{'':<26}logits differ by at most {float((a - b).abs().max()):.2e}; classes agree: {agree}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"channels_last vs contiguous, {args.threads} threads, median of {args.repeats} interleaved repeats")
    print(f"{'model':<26}{'work':<10}{'contiguous ms':>14}{'channels_last ms':>17}{'ratio':>8}")
    for case in CASES:
        bench_case(*case, repeats=args.repeats)


if __name__ == "__main__":
    main()

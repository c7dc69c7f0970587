"""Throughput of every registered corruption: images/s at 32x32 and 224x224,
batch 64, severity 3, median of 5 timed runs after one warm-up.

    .venv/bin/python benchmarks/bench_corruptions.py [--device cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from robustgate.data.corruptions import corruptions

BATCH = 64
SEVERITY = 3
RUNS = 5
SIZES = (32, 224)


def images_per_second(name: str, size: int, device: torch.device) -> float:
    fn = corruptions.get(name)
    images = torch.rand(BATCH, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    generator = torch.Generator(device=device).manual_seed(0)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn(images, SEVERITY, generator)  # warm-up: kernel caches, lazy init
    sync()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn(images, SEVERITY, generator)
        sync()
        times.append(time.perf_counter() - start)
    return BATCH / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, {torch.get_num_threads()} threads, batch {BATCH}, severity {SEVERITY}, median of {RUNS}")
    header = f"{'corruption':<18}" + "".join(f"{f'{s}x{s} img/s':>16}" for s in SIZES)
    print(header)
    print("-" * len(header))
    for name in corruptions.names():
        print(f"{name:<18}" + "".join(f"{images_per_second(name, s, device):>16,.0f}" for s in SIZES))


if __name__ == "__main__":
    main()

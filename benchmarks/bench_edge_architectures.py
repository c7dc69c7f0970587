"""The edge architectures through robustgate's int8 paths, pruning and attack protocol: one table row each.

    .venv/bin/python benchmarks/bench_edge_architectures.py [--archs resnet18,mobilenet_v2] [--epochs 3]

Per architecture (torchvision, 10 classes):

- speed-ups at 224x224, batch 1, one thread: FX int8 and 50% L1-pruned (no fine-tuning) against
  fp32, each the median of interleaved block ratios (robustgate's latency method);
- the twin's agreement with the int8 model on every digits test image at 64x64 after a short
  training (``--epochs`` on the 1,438 training digits, then BatchNorm statistics re-estimated),
  for FX, eager (where torchvision has a quantizable twin) and PT2E (compiled by inductor, the
  kernels a PT2E variant runs): the protocol's measure (images whose every layer the lockstep twin
  reproduces) / the share of predictions a free-running twin shares with the int8 model (what
  lockstep corrects);
- clean and PGD-10 robust accuracy at eps 2/255 (the quickstart's) on 200 test digits: fp32
  attacked directly, FX int8 through robustgate's protocol (twin + transfer + 200-query Square).

Rows print as each architecture finishes; the run ends with a Markdown table. Expect roughly an
hour on two cores for all fourteen.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
import torchvision
from torch.optim.swa_utils import update_bn

from robustgate.attacks import AttackSettings
from robustgate.attacks.protocol import fake_quant_twin, robust_correct
from robustgate.attacks.run import predictions
from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.int8.lockstep import twin_fidelity
from robustgate.compressors.prune import PruneParams, prune_channels
from robustgate.compressors.ptq import PTQParams
from robustgate.data.digits import load_digits_domain
from robustgate.data.imageset import ImageSet
from robustgate.data.resize import to_model_geometry
from robustgate.data.splits import stratified_part, stratified_sample
from robustgate.errors import RobustgateError
from robustgate.latency.measure import Plan, loop_runner, query_of, time_queries, torch_threads
from robustgate.models.classifier import Classifier, Normalize
from robustgate.models.state import load_state
from robustgate.models.train import train_classifier
from robustgate.spec.model import TrainParams

ARCHS = [
    "resnet18", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_v2_s",
    "shufflenet_v2_x1_0", "squeezenet1_1", "mnasnet0_5", "regnet_x_400mf", "regnet_y_400mf", "densenet121",
    "googlenet", "convnext_tiny",
]
EAGER = {"resnet18", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v2_x1_0", "googlenet"}
ptq = compression_steps.get("ptq")


def digits(size: int) -> tuple[ImageSet, ImageSet]:
    images, labels, classes = load_digits_domain("handwritten")
    full = ImageSet(to_model_geometry(images, (size, size), 3), labels, classes)
    return full.subset(stratified_part(full.labels, "train", 0.8, 0)), full.subset(stratified_part(full.labels, "test", 0.8, 0))


def network(arch: str) -> torch.nn.Module:
    extra = {"aux_logits": False, "init_weights": True} if arch == "googlenet" else {}
    torch.manual_seed(0)
    return torchvision.models.get_model(arch, weights=None, num_classes=10, **extra)


def speedup(fp32: torch.nn.Module, candidate: torch.nn.Module, size: int) -> float:
    batch = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch_threads(1):
        timings = time_queries(query_of(candidate, batch), Plan(warmup=5, min_queries=60, min_seconds=3.0), loop_runner,
                               query_of(fp32, batch))
    return float(np.median(timings.ratios))


def agreement(int8: Classifier, images: torch.Tensor) -> str:
    """The protocol's twin agreement (layer by layer, in lockstep) / the free-running twin's prediction agreement."""
    twin = fake_quant_twin(int8, images[:2])
    free = twin.with_net(twin.net.twin)
    return (f"{float(twin_fidelity(twin, images).float().mean()):.4f}/"
            f"{float((predictions(free, images) == predictions(int8, images)).float().mean()):.4f}")


def row(arch: str, epochs: int) -> dict[str, str]:
    out: dict[str, str] = {"arch": arch}
    train, test = digits(64)
    model = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), network(arch))
    started = time.perf_counter()
    params = TrainParams(on="digits-train", epochs=epochs)
    load_state(model, train_classifier(model, train, params, seed=0, device=torch.device("cpu"), progress=lambda _: None))
    # MobileNetV3, EfficientNet (BatchNorm momentum 0.01) and MNASNet (0.0003) barely move their running
    # statistics in a few hundred steps: in eval mode they sit at chance (0.095 after 12 epochs). Re-estimate
    # them over the training images with the final weights (precise BN) so every row measures a working model.
    update_bn([train.floats()[s : s + 128] for s in range(0, len(train), 128)], model)
    model.eval()
    out["train s"] = f"{time.perf_counter() - started:.0f}"
    ctx = StepContext(lambda _: train, "digits-train", torch.zeros(2, 3, 64, 64), 0, lambda _: None)
    x = test.floats()
    fx = ptq.apply(model, PTQParams(), ctx)
    out["twin FX"] = agreement(fx, x)
    out["twin eager"] = agreement(ptq.apply(model, PTQParams(method="eager"), ctx), x) if arch in EAGER else "n/a"
    try:
        out["twin PT2E"] = agreement(ptq.apply(model, PTQParams(backend="pt2e"), ctx), x)
    except RobustgateError as err:
        out["twin PT2E"] = f"fails: {err.message[:60]}"
    chosen = stratified_sample(test.labels, 200, 0)
    images, labels = x[chosen], test.labels[chosen]
    settings = AttackSettings(2 / 255, "Linf", 10, None, 1)
    started = time.perf_counter()
    fp32_robust = robust_correct("pgd", settings, model, None, images, labels, 0, 200)
    try:
        int8_robust = robust_correct("pgd", settings, fx, model, images, labels, 0, 200)
    except RobustgateError as err:  # the protocol failing closed is a result too
        return {**out, "PGD fp32/int8": f"int8 refused: {err.message[:80]}"}
    out["attack s"] = f"{time.perf_counter() - started:.0f}"
    out["clean fp32/int8"] = (f"{float((predictions(model, images) == labels).float().mean()):.3f}/"
                              f"{float((predictions(fx, images) == labels).float().mean()):.3f}")
    out["PGD fp32/int8"] = f"{float(fp32_robust.correct.float().mean()):.3f}/{float(int8_robust.correct.float().mean()):.3f}"
    counts = int8_robust.counts()
    out["int8 broken by twin/transfer/free"] = f"{counts['twin']}/{counts['transfer']}/{counts['gradient-free']}"
    big = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), network(arch))
    load_state(big, model.state_dict())  # the trained weights; every family here pools to any input size
    big.eval()
    calibration = ImageSet(to_model_geometry(train.images[:64], (224, 224), 3), train.labels[:64], train.classes)
    ctx224 = StepContext(lambda _: calibration, "digits-train", torch.zeros(2, 3, 224, 224), 0, lambda _: None)
    out["int8 speed-up"] = f"{speedup(big, ptq.apply(big, PTQParams(calibrate={'on': 'x', 'samples': 64}), ctx224), 224):.2f}x"
    try:
        pruned = prune_channels(big, PruneParams(method="l1", ratio=0.5), ctx224)
        out["pruned speed-up"] = f"{speedup(big, pruned, 224):.2f}x"
    except RobustgateError as err:
        out["pruned speed-up"] = f"refused: {err.message[:40]}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    for arch in args.archs.split(","):
        started = time.perf_counter()
        rows.append(row(arch, args.epochs))
        print(f"{arch}: {rows[-1]} ({time.perf_counter() - started:.0f} s)", flush=True)
    columns = list(rows[0])
    print("\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for values in rows:
        print("| " + " | ".join(values.get(c, "") for c in columns) + " |")


if __name__ == "__main__":
    main()

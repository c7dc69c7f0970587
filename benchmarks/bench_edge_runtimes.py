"""Eager PyTorch against ONNX Runtime and ExecuTorch, fp32 and int8, built by robustgate's own steps.

    .venv/bin/python benchmarks/bench_edge_runtimes.py [--queries 60] [--threads 2] [--epochs 4] [--size 64]

For ResNet-18 and MobileNetV3-small, five models: eager fp32, eager int8 (ptq, torch.ao FX, x86 engine), ORT fp32
(export: {format: onnx}), ORT int8 (ptq: {backend: onnxruntime}, QDQ) and ExecuTorch XNNPACK int8 (ptq: {backend:
xnnpack}: PT2E with the XNNPACKQuantizer, lowered to a .pte).

- Accuracy: each architecture trained on the digits' train part at --size px (--epochs, AdamW at LR[arch], seed 0),
  BatchNorm statistics recomputed over the train part, compressed with 256 calibration images, scored on the test part; agreement is the share of test images whose top-1 class
  matches the model's torch fp32 parent (what a runtime must preserve); twin is the attack protocol's twin agreement
  (twin_fidelity: the share of test images on which the model's differentiable twin reproduces every int8 layer
  within one step, and the logits; for ONNX models the twin of the graph ORT runs, for the .pte the PT2E graph it was
  lowered from, fed XNNPACK's own codes and judged layer by layer the same way).
- Latency: the same five recipes at 224x224, batch 1, random weights (latency does not depend on them), the five
  models interleaved query by query in one process so machine noise hits all alike; medians, and the median of
  per-query fp32-eager/model ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

from robustgate.attacks.protocol import fake_quant_twin
from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.int8.lockstep import twin_fidelity
from robustgate.compressors.export import ExportParams
from robustgate.compressors.ptq import PTQParams
from robustgate.data.digits import load_digits_domain
from robustgate.data.imageset import ImageSet
from robustgate.data.resize import to_model_geometry
from robustgate.data.splits import stratified_part
from robustgate.latency.machine import cpu_model
from robustgate.latency.measure import torch_threads
from robustgate.models.classifier import Classifier, Normalize
from robustgate.models.state import load_state
from robustgate.models.train import train_classifier
from robustgate.provenance import int8_sums_saturate
from robustgate.spec.model import TrainParams

ARCHS = ("resnet18", "mobilenet_v3_small")
MODELS = ("eager fp32", "eager int8", "ORT fp32", "ORT int8", "ET int8")
LR = {"resnet18": 0.01, "mobilenet_v3_small": 0.002}  # MobileNetV3 stays at chance at 0.01


def network(arch: str) -> Classifier:
    torch.manual_seed(0)
    return Classifier(Normalize((0.5,) * 3, (0.25,) * 3), torchvision.models.get_model(arch, weights=None, num_classes=10)).eval()


def compressed(fp32: Classifier, calibration: ImageSet, size: int) -> tuple[dict[str, Classifier], dict[str, float]]:
    ctx = StepContext(lambda _: calibration, "train", torch.zeros(2, 3, size, size), 0, lambda _: None)
    ptq, export = compression_steps.get("ptq"), compression_steps.get("export")
    recipes = {
        "eager int8": lambda: ptq.apply(fp32, PTQParams(), ctx),
        "ORT fp32": lambda: export.apply(fp32, ExportParams(format="onnx"), ctx),
        "ORT int8": lambda: ptq.apply(fp32, PTQParams(backend="onnxruntime"), ctx),
        "ET int8": lambda: ptq.apply(fp32, PTQParams(backend="xnnpack"), ctx),
    }
    built, seconds = {"eager fp32": fp32}, {}
    for name, recipe in recipes.items():
        start = time.perf_counter()
        built[name] = recipe()
        seconds[name] = time.perf_counter() - start
    return built, seconds


def accuracy_table(epochs: int, size: int) -> None:
    images, labels, classes = load_digits_domain("handwritten")
    digits = ImageSet(to_model_geometry(images, (size, size), 3), labels, classes)
    train = digits.subset(stratified_part(digits.labels, "train", 0.8, 0))
    test = digits.subset(stratified_part(digits.labels, "test", 0.8, 0))
    x, y = test.floats(), torch.as_tensor(test.labels)
    print(f"\naccuracy on the digits' test part ({len(y)} images, {size}x{size}), and top-1 agreement with the torch fp32 parent")
    print(f"{'arch':20} {'model':12} {'accuracy':>9} {'agreement':>10} {'twin':>6} {'build s':>8}")
    for arch in ARCHS:
        model = network(arch)
        params = TrainParams(on="train", epochs=epochs, lr=LR[arch], augment=False)
        load_state(model, train_classifier(model, train, params, seed=0, device=torch.device("cpu"), progress=lambda _: None))
        # torchvision's MobileNetV3 keeps BatchNorm statistics with momentum 0.01: after a few short epochs they are
        # still near their initial values and the eval-mode model sits at chance. Recompute them over the train part.
        torch.optim.swa_utils.update_bn(train.floats().split(64), model)
        models, seconds = compressed(model.eval(), train, size)
        with torch.no_grad():
            reference = model(x).argmax(1)
            for name, built in models.items():
                predicted = torch.cat([built(batch).argmax(1) for batch in x.split(64)])
                twin = "-" if name == "eager fp32" else f"{float(twin_fidelity(fake_quant_twin(built, x[:2]), x).float().mean()):.4f}"
                print(f"{arch:20} {name:12} {float((predicted == y).float().mean()):9.4f} "
                      f"{float((predicted == reference).float().mean()):10.4f} {twin:>6} {seconds.get(name, 0.0):8.1f}")


def latency_table(queries: int, threads: int) -> None:
    print(f"\nlatency at 224x224, batch 1, {threads} threads, {queries} interleaved queries (random weights)")
    print(f"{'arch':20} {'model':12} {'median ms':>10} {'speed-up':>9}")
    rng = torch.Generator().manual_seed(0)
    calibration = ImageSet(torch.randint(0, 256, (32, 3, 224, 224), dtype=torch.uint8, generator=rng), torch.arange(32) % 10,
                           tuple(str(i) for i in range(10)))
    for arch in ARCHS:
        models, _ = compressed(network(arch), calibration, 224)
        x = torch.rand(1, 3, 224, 224, generator=rng)
        times: dict[str, list[float]] = {name: [] for name in models}
        with torch_threads(threads), torch.inference_mode():
            for model in models.values():  # warm-up: first runs pick kernels and allocate
                for _ in range(5):
                    model(x)
            for _ in range(queries):
                for name, model in models.items():
                    start = time.perf_counter()
                    model(x)
                    times[name].append(time.perf_counter() - start)
        for name in MODELS:
            ratio = statistics.median(f / t for f, t in zip(times["eager fp32"], times[name], strict=True))
            print(f"{arch:20} {name:12} {statistics.median(times[name]) * 1e3:10.2f} {ratio:8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    from importlib.metadata import version

    print(f"torch {torch.__version__}; ONNX Runtime {version('onnxruntime')}; ExecuTorch {version('executorch')}; "
          f"CPU: {cpu_model()}, int8 sums saturate (no VNNI): {int8_sums_saturate()}")
    latency_table(args.queries, args.threads)
    accuracy_table(args.epochs, args.size)


if __name__ == "__main__":
    main()

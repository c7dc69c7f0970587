"""torch.compile (inductor) against eager PyTorch for robustgate's fp32 CPU work: is the compile time repaid?

    .venv/bin/python benchmarks/bench_torch_compile.py [--repeats 5] [--threads 2] [--cases quickstart office31]

For each case and kind of work, the model is compiled afresh (``torch.compile(model)``, inductor, static shapes;
the compile cache of earlier calls in this process is reset first) and the first compiled call is timed: compile
time is that call less an eager call. Then eager and compiled calls alternate ``--repeats`` times; the ratio is the
median of per-repeat ratios (eager / compiled, above 1: compiled is faster). ``break-even`` is how many calls the
compile time needs to be repaid (compile seconds / seconds saved per call; ``never`` when compiled is not faster),
and ``run calls`` how many such calls the case's cold run makes:

- quickstart: ResNet-18 at 32 px, as robustness_specs/quickstart.yaml: 138 training steps of 64 (6 epochs of 1,438
  images, 23 steps each), PGD-10 over 359 images at 3 strengths through its int8 protocol (about 2 x 3 x 10 calls
  of a 128-image batch on the fp32 parent and the twin), about 25 prediction calls of 256 images;
- office31: ResNet-34 at 144 px, as the spec's `cpu` profile: 355 training steps of 32 (5 epochs of 2,253 images),
  PGD-10 over 64 images at 2 strengths (2 x 10 calls of 64), about 60 prediction calls of 64 images.

Prediction runs in channels_last (as ModelStore.prediction_copy does), training and attack steps contiguous (as
robustgate runs them). Random weights: the arithmetic is the trained model's.

Run of 2026-12-04 (AMD EPYC, AVX2, 2 threads, torch 2.14.1; quickstart 5 repeats, office31 3), eager / compiled:

    case           work        eager ms  compiled ms  ratio  compile s  break-even  run calls
    resnet18 @32   predict        127.7        118.7  1.10x       11.8        1317         25
    resnet18 @32   pgd step       206.9        166.6  1.22x       20.8         516         60
    resnet18 @32   train step     390.8        379.0  1.03x       34.4        2898        138
    resnet34 @144  predict       1291.5       1125.4  1.14x       14.9          90         60
    resnet34 @144  pgd step      3576.8       2762.3  1.20x       24.9          31         20
    resnet34 @144  train step    2324.0       2172.8  1.07x       40.5         268        355

Not adopted: the compile time is not repaid on the quickstart at all (its runs make 5 to 20 times fewer calls than
break-even) and would save about 13 s of the Office-31 profile's 885 s of training (355 steps against 268 to
break even), while compiled kernels change the trained weights' bits, which key every cached artifact.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch.nn import functional as F

# name, builder, pixels, (predict batch, calls), (attack batch, calls), (train batch, calls)
CASES = {
    "quickstart": ("resnet18 @32", torchvision.models.resnet18, 32, (256, 25), (128, 60), (64, 138)),
    "office31": ("resnet34 @144", torchvision.models.resnet34, 144, (64, 60), (64, 20), (32, 355)),
}


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def works(model: torch.nn.Module, pixels: int, sizes: dict[str, int]) -> dict[str, Callable[[torch.nn.Module], Callable[[], None]]]:
    """Per kind of work, a function of a model (eager or compiled) giving one call of that work."""
    generator = torch.Generator().manual_seed(0)
    x = {work: torch.rand(n, 3, pixels, pixels, generator=generator) for work, n in sizes.items()}
    y = {work: torch.randint(0, 10, (n,), generator=generator) for work, n in sizes.items()}
    x_last = x["predict"].contiguous(memory_format=torch.channels_last)

    def predict(m: torch.nn.Module) -> Callable[[], None]:
        def call() -> None:
            with torch.inference_mode():
                m(x_last)
        return call

    def pgd_step(m: torch.nn.Module) -> Callable[[], None]:
        def call() -> None:
            images = x["pgd step"].clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(m(images), y["pgd step"]), images)
            (images + grad.sign() / 255).clamp(0, 1)
        return call

    def train_step(m: torch.nn.Module) -> Callable[[], None]:
        optimizer = torch.optim.AdamW(m.parameters(), 1e-3)

        def call() -> None:
            loss = F.cross_entropy(m(x["train step"]), y["train step"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return call

    return {"predict": predict, "pgd step": pgd_step, "train step": train_step}


def bench_case(case: str, repeats: int) -> None:
    name, build, pixels, (n_predict, c_predict), (n_attack, c_attack), (n_train, c_train) = CASES[case]
    sizes = {"predict": n_predict, "pgd step": n_attack, "train step": n_train}
    calls = {"predict": c_predict, "pgd step": c_attack, "train step": c_train}
    torch.manual_seed(0)
    base = build(num_classes=10)
    for work, make in works(base, pixels, sizes).items():
        layout = torch.channels_last if work == "predict" else torch.contiguous_format
        eager_model = copy.deepcopy(base).to(memory_format=layout)
        eager_model.train(work == "train step").requires_grad_(work == "train step")
        compiled_model = copy.deepcopy(eager_model)
        torch._dynamo.reset()  # each compile from scratch, as a fresh process would
        compiled = torch.compile(compiled_model)
        eager_call, compiled_call = make(eager_model), make(compiled)  # type: ignore[arg-type]
        eager_first = timed(eager_call)
        compile_seconds = timed(compiled_call) - timed(eager_call)
        eager_s, compiled_s = [], []
        for _ in range(repeats):
            eager_s.append(timed(eager_call))
            compiled_s.append(timed(compiled_call))
        ratio = statistics.median(e / c for e, c in zip(eager_s, compiled_s))
        saved = statistics.median(eager_s) - statistics.median(compiled_s)
        even = f"{compile_seconds / saved:.0f}" if saved > 0 else "never"
        print(f"{name:<15}{work:<11}{statistics.median(eager_s) * 1e3:>9.1f}{statistics.median(compiled_s) * 1e3:>12.1f}"
              f"{ratio:>7.2f}x{compile_seconds:>10.1f}{even:>11}{calls[work]:>10}   (first eager call {eager_first:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch.compile (inductor) vs eager, torch {torch.__version__}, {args.threads} threads, "
          f"median of {args.repeats} interleaved repeats")
    print(f"{'model':<15}{'work':<11}{'eager ms':>9}{'compiled ms':>12}{'ratio':>8}{'compile s':>10}"
          f"{'break-even':>11}{'run calls':>10}")
    for case in args.cases:
        bench_case(case, args.repeats)


if __name__ == "__main__":
    main()

"""What the gradient-masking diagnostics cost against the attack they check: the quickstart's PGD-10.

    .venv/bin/python benchmarks/bench_masking_diagnostics.py [--runs 3] [--samples 200] [--eps 2/255]

The quickstart's ResNet-18 and its int8 variant (trained and quantized through robustgate's own
evaluation, cached in .robustgate-cache), attacked as its contract does (PGD-10 on a stratified
sample of the handwritten test part; int8 through twin + transfer + 200-query Square). Each run
times, in one process, the attack and then the default and thorough diagnostics on its result;
the table gives medians over ``--runs`` and the ratios diagnostics / attack, with the findings.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from robustgate.attacks import AttackSettings
from robustgate.attacks.diagnostics import masking_findings
from robustgate.attacks.protocol import fake_quant_twin, robust_correct
from robustgate.attacks.strength import parse_strength
from robustgate.cache import ArtifactCache
from robustgate.spec import load_spec
from robustgate.evaluation import SpecEvaluation

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--eps", default="2/255")
    args = parser.parse_args()
    spec = load_spec(ROOT / "robustness_specs" / "quickstart.yaml")
    evaluation = SpecEvaluation.build(spec, ArtifactCache(ROOT / ".robustgate-cache"), print)
    data = evaluation.datasets["handwritten"]
    data = data.subset(evaluation.predictions.sample("handwritten", args.samples))
    images, labels = data.floats(), data.labels
    settings = AttackSettings(parse_strength(args.eps), "Linf", 10, None, 1)
    rows = []
    for variant in ("baseline", "int8"):
        built = evaluation.models.model(variant)
        parent = None if built.differentiable else evaluation.models.model("baseline").model
        attacker = built.model if built.differentiable else fake_quant_twin(built.model, images[:2])
        times: dict[str, list[float]] = {"attack": [], "default": [], "thorough": []}
        findings: dict[str, list[str]] = {}
        for _ in range(args.runs):
            start = time.perf_counter()
            result = robust_correct("pgd", settings, built.model, parent, images, labels, spec.seed, 200,
                                    differentiable=built.differentiable)
            times["attack"].append(time.perf_counter() - start)
            for mode in ("default", "thorough"):
                start = time.perf_counter()
                findings[mode] = masking_findings("pgd", settings, attacker, built.model, images, labels, result, 10,
                                                  spec.seed, 200, thorough=mode == "thorough")
                times[mode].append(time.perf_counter() - start)
        median = {k: statistics.median(v) for k, v in times.items()}
        rows.append((variant, float(result.correct.float().mean()), median, findings))
    print(f"\nPGD-10 at {args.eps} on {len(labels)} quickstart test images, medians of {args.runs} runs (this machine)")
    print("| model | robust accuracy | attack s | default checks s | default / attack | thorough s | thorough / attack |")
    print("|---|---|---|---|---|---|---|")
    for variant, robust, m, _ in rows:
        print(f"| {variant} | {robust:.3f} | {m['attack']:.1f} | {m['default']:.1f} | {m['default'] / m['attack']:.2f}x "
              f"| {m['thorough']:.1f} | {m['thorough'] / m['attack']:.2f}x |")
    for variant, _, _, found in rows:
        for mode, items in found.items():
            print(f"findings ({variant}, {mode}): {'; '.join(items) or 'none'}")


if __name__ == "__main__":
    main()

"""Robust accuracy of the quickstart's baseline, int8 and 50%-pruned models under FGSM, PGD and
salt-and-pepper at several strengths, and what the gradient-masking diagnostics said.

    .venv/bin/python benchmarks/bench_attack_quickstart.py [--samples 200]

Runs through robustgate's own evaluation and attack contracts (cached in .robustgate-cache, so a
second run prints at once). Every model is attacked on the same stratified sample of the
handwritten test part.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from robustgate.attacks.strength import format_strength
from robustgate.cache import ArtifactCache
from robustgate.checks import contract_kinds
from robustgate.spec import load_spec
from robustgate.evaluation import SpecEvaluation

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = """
variants:
  int8: {{ptq: {{backend: x86, calibrate: {{on: digits-train, samples: 256}}}}}}
  pruned50: {{prune: {{method: l1, ratio: 0.5, finetune: {{on: digits-train, epochs: 2}}}}}}
contracts:
  - attack: {{kind: fgsm, eps: [1/255, 2/255, 4/255, 8/255], on: handwritten, samples: {n}, min: 0.0}}
  - attack: {{kind: pgd, eps: [1/255, 2/255, 4/255, 8/255], on: handwritten, samples: {n}, min: 0.0}}
  - attack: {{kind: salt_pepper, amount: [0.01, 0.05, 0.1], on: handwritten, samples: {n}, min: 0.0}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    text = (ROOT / "robustness_specs" / "quickstart.yaml").read_text()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "attacks.yaml"
        path.write_text(text[: text.index("variants:")] + ATTACKS.format(n=args.samples))
        spec = load_spec(path)
        evaluation = SpecEvaluation.build(spec, ArtifactCache(ROOT / ".robustgate-cache"), print)
        rows, findings = [], {}
        for contract in spec.contracts:
            kind = contract_kinds.get(contract.kind)
            for variant in ("baseline", "int8", "pruned50"):
                start = time.perf_counter()
                outcome = kind.check(evaluation, variant, contract.params)
                seconds = time.perf_counter() - start
                points = [
                    f"{format_strength(s)}: {outcome.metrics[f'robust_accuracy@{format_strength(s)}']:.3f}"
                    for s in contract.params.strengths
                ]
                rows.append((contract.params.kind, variant, ", ".join(points), f"{seconds:.0f}s"))
                findings[(contract.params.kind, variant)] = outcome.findings
        predictions = evaluation.predictions
        clean = {v: float((predictions.logits(v, "handwritten").argmax(1) == predictions.labels("handwritten")).float().mean()) for v in ("baseline", "int8", "pruned50")}
    print("clean accuracy on handwritten (all 359): " + ", ".join(f"{v} {a:.3f}" for v, a in clean.items()))
    print(f"robust accuracy on {args.samples} handwritten test images (strength: accuracy)")
    for row in rows:
        print(f"  {row[0]:<12}{row[1]:<10}{row[2]}   ({row[3]})")
    print("gradient-masking findings:")
    for (kind, variant), found in findings.items():
        for finding in found:
            print(f"  {kind} {variant}: {finding}")
    if not any(findings.values()):
        print("  none")


if __name__ == "__main__":
    main()

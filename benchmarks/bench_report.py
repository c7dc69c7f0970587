"""Render time and size of report.html and summary.md for results documents of 10, 100 and 1,000 items.

    .venv/bin/python benchmarks/bench_report.py [reports/results.json] [--sizes 10 100 1000] [--write DIR]

The documents are synthetic but realistic: the given run's baseline items once, then its variant items
replicated as new variants (their own technique and size ratio, accuracies, latencies and speed-ups
perturbed, some failing, some attack items with an eps sweep or a gradient-masking finding). Each render
is timed three times in this process and the median is shown. The quickstart writes reports/results.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from robustgate.reports.html import render_html
from robustgate.reports.markdown import render_markdown

ROOT = Path(__file__).resolve().parents[1]
TECHNIQUES = {"ptq": 0.25, "prune+ptq": 0.14, "prune": 0.55, "distill": 0.4, "distill+ptq": 0.1, "lowrank": 0.6}
SWEEP = ("0", "2/255", "4/255", "8/255")


def _perturb(item: dict[str, Any], model: str, technique: str, size: float, rng: random.Random) -> dict[str, Any]:
    item = copy.deepcopy(item)
    item.update(model=model, technique=technique, nodeid=item["nodeid"].replace(f"::{item['model']}::", f"::{model}::"))
    m, shift, slower = item["metrics"], rng.uniform(-0.08, 0.01), rng.uniform(0.6, 2.5)
    for key, value in m.items():
        if value is not None and "accuracy" in key and 0 <= value <= 1:
            m[key] = min(1.0, max(0.0, value + shift))
    m.update(size_ratio=size, bytes=(m.get("bytes") or 1.0) * size / (m.get("size_ratio") or 1.0))
    for key in ("speedup", "speedup_low"):
        if m.get(key) is not None:
            m[key] /= slower
    for key in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms"):
        if m.get(key) is not None:
            m[key] *= slower
    if "latency_ms" in item["series"]:
        item["series"]["latency_ms"] = [value * slower * rng.uniform(0.98, 1.02) for value in item["series"]["latency_ms"]]
        item["series"]["latency_ms"].sort()
    if item["contract"].startswith("attack") and m.get("robust_accuracy") is not None:
        if rng.random() < 0.5:
            for k, at in enumerate(SWEEP):
                value = max(0.0, m["robust_accuracy"] - 0.12 * k * rng.uniform(0.5, 1.5))
                m.update({f"robust_accuracy@{at}": value, f"robust_accuracy_low@{at}": max(0.0, value - 0.05),
                          f"robust_accuracy_high@{at}": min(1.0, value + 0.05)})
        if rng.random() < 0.1:
            item["findings"] = ["a single FGSM step breaks 9 images that pgd-10 left standing: the iterative attack is "
                                "not following the gradient"]
    if item["gates"] and rng.random() < 0.05:
        item["outcome"], item["gates"][0]["passed"] = "failed", False
    return item


def synthetic(doc: dict[str, Any], count: int, seed: int = 0) -> dict[str, Any]:
    """A document of ``count`` items grown from ``doc``'s: its baseline items, then its variants' items as new variants."""
    rng = random.Random(seed)
    baseline = [item for item in doc["items"] if item["model"] == "baseline"][:count]
    pool = [item for item in doc["items"] if item["model"] != "baseline"] or doc["items"]
    items, k = list(baseline), 0
    while len(items) < count:
        technique = rng.choice(list(TECHNIQUES))
        size = TECHNIQUES[technique] * rng.uniform(0.7, 1.3)
        items += [_perturb(item, f"{technique}-{k:03d}", technique, size, rng) for item in pool][: count - len(items)]
        k += 1
    return {**doc, "items": items}


def median_seconds(render: Any, doc: dict[str, Any], runs: int = 3) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        out = render(doc)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, default=ROOT / "reports" / "results.json",
                        help="a results.json to grow the documents from (default: reports/results.json)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[10, 100, 1000], help="item counts (default: 10 100 1000)")
    parser.add_argument("--write", type=Path, help="also write each report.html to this folder (default: none)")
    args = parser.parse_args()
    if not args.results.exists():
        raise SystemExit(f"{args.results} does not exist: run ./scripts/quickstart.sh first, or pass a results.json")
    real = json.loads(args.results.read_text(encoding="utf-8"))
    docs = [(f"{args.results.name} (real)", real)] + [("synthetic", synthetic(real, n)) for n in args.sizes]
    print(f"{'document':<22} {'items':>6} {'html s':>8} {'html KB':>9} {'md s':>8} {'md KB':>7}")
    for name, doc in docs:
        html_s, page = median_seconds(render_html, doc)
        md_s, summary = median_seconds(render_markdown, doc)
        print(f"{name:<22} {len(doc['items']):>6} {html_s:>8.2f} {len(page.encode()) / 1024:>9.0f} "
              f"{md_s:>8.4f} {len(summary.encode()) / 1024:>7.0f}")
        if args.write:
            args.write.mkdir(parents=True, exist_ok=True)
            (args.write / f"report-{len(doc['items'])}.html").write_text(page, encoding="utf-8")
    on_disk = args.results.with_name("report.html")
    if on_disk.exists():
        print(f"\n{on_disk}: {on_disk.stat().st_size / 1024:.0f} KB on disk, as the run wrote it")


if __name__ == "__main__":
    main()

"""Emulate other x86-64 CPUs on this one: run specs or tests under a matrix of kernel paths and thread counts.

    .venv/bin/python benchmarks/bench_cross_cpu.py robustness_specs/quickstart.yaml        # a spec: its numbers
    .venv/bin/python benchmarks/bench_cross_cpu.py --asserts tests/compressors/test_prune.py  # tests: outcomes, values
    .venv/bin/python benchmarks/bench_cross_cpu.py --quick tests/compressors/test_ptq.py  # 4 settings, not 12
    .venv/bin/python benchmarks/bench_cross_cpu.py --setting avx2,AVX2,1 robustness_specs/quickstart.yaml -- --benchmark-skip

Another CPU runs other kernels, so a model trained there has other weights and other accuracies. Three knobs
reproduce that here, each verified to change the bits of a trained net's weights on an AVX-512 machine:
``ATEN_CPU_CAPABILITY`` (ATen's vectorised kernels: default, avx2, avx512), ``ONEDNN_MAX_CPU_ISA``
(oneDNN's convolutions, fp32 inference included: AVX2 or the machine's best) and the thread count
(``OMP_NUM_THREADS``: training sums weight gradients in another order). ``FBGEMM_ENABLE_INSTRUCTIONS`` does
not change int8 outputs here (fbgemm's integer arithmetic is exact), so the matrix leaves it out.

Each setting is a fresh pytest process with its own empty robustgate cache, so no setting reuses another's
weights. A spec prints every contract's headline (value, bound, gate) per setting; tests print their outcome
per setting. A claim that the suite passes on any x86-64 CPU is this table with no row that changes outcome.
Settings run one after another (two cores: the others would starve); ``ATEN_CPU_CAPABILITY=default`` runs
scalar kernels and is slow (the quickstart took 25 minutes under it on a busy 2-core machine, 3 under avx2).
``--asserts`` also prints the values of every passing comparison with a float in a test (pytest's
assertion-pass hook: ``assert 0.9861 >= (0.9889 - 0.02)``), to see how close a test's threshold sits.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ATEN = ("default", "avx2", "avx512")
ONEDNN = ("AVX2", "")  # "" is oneDNN's own pick: the machine's best
THREADS = (1, 2)
QUICK = (("avx512", "", 2), ("avx2", "AVX2", 1), ("default", "AVX2", 2), ("avx512", "", 1))


def settings(quick: bool) -> list[tuple[str, str, int]]:
    return list(QUICK) if quick else list(itertools.product(ATEN, ONEDNN, THREADS))


def label(setting: tuple[str, str, int]) -> str:
    aten, onednn, threads = setting
    return f"aten={aten} onednn={onednn or 'best'} threads={threads}"


def environment(setting: tuple[str, str, int]) -> dict[str, str]:
    aten, onednn, threads = setting
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    env.update(ATEN_CPU_CAPABILITY=aten, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if onednn:
        env["ONEDNN_MAX_CPU_ISA"] = onednn
    return env


def pytest_assertion_pass(item, lineno: int, orig: str, expl: str) -> None:
    """Loaded into the measured pytest process (``-p bench_cross_cpu``): record a passing float comparison."""
    if any(op in orig for op in ("<", ">")) and "." in expl and os.environ.get("CROSS_CPU_ASSERTS"):
        with open(os.environ["CROSS_CPU_ASSERTS"], "a") as out:
            out.write(f"{item.nodeid}: {orig}  ->  {expl.splitlines()[0][:160]}\n")  # no line: edits move it


def run(targets: list[str], setting: tuple[str, str, int], extra: list[str], work: Path, asserts: bool) -> tuple[int, Path, float]:
    """One fresh pytest process under ``setting``; returns its exit code, its JUnit XML and its wall time."""
    xml = work / "junit.xml"
    command = [sys.executable, "-m", "pytest", *targets, "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
               f"--robustgate-cache-dir={work / 'cache'}", *extra]
    env = environment(setting)
    if asserts:  # rewritten test modules go to a private pyc folder, so the hook is compiled in
        command += ["-p", "bench_cross_cpu", "-o", "enable_assertion_pass_hook=true"]
        env.update(CROSS_CPU_ASSERTS=str(work / "asserts.txt"), PYTHONPYCACHEPREFIX=str(work / "pyc"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).parent), env.get("PYTHONPATH")])))
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    (work / "output.txt").write_text(done.stdout + done.stderr)
    return done.returncode, xml, time.perf_counter() - start


def cases(xml: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """{test id: (outcome, robustgate properties)} of a JUnit XML file."""
    out = {}
    if not xml.exists():
        return out
    for case in ET.parse(xml).iter("testcase"):
        outcome = "passed"
        for child, name in (("failure", "FAILED"), ("error", "ERROR"), ("skipped", "skipped")):
            if case.find(child) is not None:
                outcome = name
        props = {p.get("name", "").removeprefix("robustgate."): p.get("value", "") for p in case.iter("property")}
        out[f"{case.get('classname')}::{case.get('name')}"] = (outcome, props)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="+", help="spec files or test ids, as pytest takes them")
    parser.add_argument("--quick", action="store_true", help=f"{len(QUICK)} settings instead of all {len(settings(False))}")
    parser.add_argument("--limit", type=int, help="run only the first LIMIT settings")
    parser.add_argument("--setting", action="append", metavar="ATEN,ONEDNN,THREADS",
                        help="run this setting instead of the matrix, e.g. default,AVX2,2 (repeatable; ONEDNN empty for best)")
    parser.add_argument("--asserts", action="store_true", help="also print the values of passing float comparisons")
    parser.add_argument("--keep", type=Path, help="keep each setting's output, XML and cache under this folder")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:cut]), argv[cut + 1:]  # after --: more pytest arguments
    rows: dict[str, dict[str, str]] = {}
    columns = []
    with tempfile.TemporaryDirectory(prefix="cross-cpu-") as scratch:
        base = args.keep or Path(scratch)
        chosen = [(a, o, int(t)) for a, o, t in (s.split(",") for s in args.setting)] if args.setting else settings(args.quick)
        for n, setting in enumerate(chosen[:args.limit]):
            work = base / f"setting{n}"
            work.mkdir(parents=True, exist_ok=True)
            code, xml, seconds = run(args.targets, setting, extra, work, args.asserts)
            columns.append(label(setting))
            print(f"[{n + 1}] {label(setting)}: exit {code} in {seconds:.0f}s", flush=True)
            for test, (outcome, props) in cases(xml).items():
                name = f"{props['model']} :: {props['contract']}" if "contract" in props else test
                rows.setdefault(name, {})[label(setting)] = f"{outcome:7} {props.get('headline', '')}".rstrip()
            if args.asserts and (work / "asserts.txt").exists():
                for line in (work / "asserts.txt").read_text().splitlines():
                    where, _, value = line.partition("  ->  ")
                    rows.setdefault(where, {})[label(setting)] = f"passed  {value}"
    print()
    changed = 0
    for name, cells in rows.items():
        outcomes = {cell.split()[0] for cell in cells.values()}
        flag = "OUTCOME CHANGES" if len(outcomes) > 1 else ""
        changed += bool(flag)
        print(f"{name}  {flag}")
        for column in columns:
            print(f"    {column:40} {cells.get(column, 'missing')}")
    print(f"\n{len(rows)} rows, {changed} whose outcome changes between settings")
    sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()

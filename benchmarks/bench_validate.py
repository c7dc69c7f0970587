"""Wall time of `robustgate validate` and `robustgate schema`, each in a fresh process (cold imports).

    .venv/bin/python benchmarks/bench_validate.py [--runs 5] [--src DIR]

Every command runs ``--runs`` times in a new interpreter; the table shows the median, the fastest and the
slowest wall time, and whether the process imported torch (what validation must not need for a spec whose
model is a torchvision name or a factory that is not torch-based). The target is under 2 s for the quickstart.
``--src`` runs another copy of robustgate's sources on the same specs, e.g. an earlier commit's, for a
before/after on the same machine load: ``git archive HEAD src | tar -x -C /tmp/head`` then ``--src /tmp/head/src``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Runs the CLI, then says on the last line of stderr whether torch was imported on the way.
PROBE = (
    "import sys\nfrom robustgate.cli import main\ncode = main(sys.argv[1:])\n"
    "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)\nraise SystemExit(code)\n"
)
COMMANDS = {
    "validate quickstart.yaml": ["validate", "robustness_specs/quickstart.yaml"],
    "validate robustness_specs/": ["validate", "robustness_specs/"],
    "schema": ["schema"],
}


def timed(args: list[str], src: Path | None) -> tuple[float, int, bool]:
    """Seconds, exit status and whether torch was imported, for one fresh process."""
    env = {**os.environ, "PYTHONPATH": str(src)} if src is not None else None
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    return seconds, done.returncode, done.stderr.rstrip().endswith("torch imported: True")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per command (default: 5)")
    parser.add_argument("--src", type=Path, help="the robustgate sources to run (default: the installed package)")
    options = parser.parse_args()
    print(f"{'command':<30} {'median s':>9} {'min s':>7} {'max s':>7} {'exit':>5}  torch imported")
    for name, args in COMMANDS.items():
        results = [timed(args, options.src) for _ in range(options.runs)]
        seconds = [s for s, _, _ in results]
        codes = sorted({code for _, code, _ in results})
        torch = "yes" if any(imported for _, _, imported in results) else "no"
        print(f"{name:<30} {statistics.median(seconds):>9.2f} {min(seconds):>7.2f} {max(seconds):>7.2f} "
              f"{','.join(map(str, codes)):>5}  {torch}")


if __name__ == "__main__":
    main()

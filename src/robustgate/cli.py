"""The ``robustgate`` command: checks specs without running anything."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from robustgate.errors import RobustgateError
from robustgate.spec import load_spec


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robustgate", description="Robustness contracts for compressed models.")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check spec files without building or evaluating anything")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    return _validate(args.files)


def _validate(files: list[Path]) -> int:
    from robustgate.plan import planned_pairs

    failed = 0
    for path in files:
        try:
            spec = load_spec(path)
        except RobustgateError as err:
            failed += 1
            print(err, file=sys.stderr)
            continue
        print(
            f"ok: {path} ({len(spec.datasets)} datasets, {len(spec.variants) + 1} models, "
            f"{len(spec.contracts)} contracts, {len(planned_pairs(spec))} items)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

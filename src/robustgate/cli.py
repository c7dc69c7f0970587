"""The ``robustgate`` command: checks specs without running anything, and re-renders results."""

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
    report = commands.add_parser("report", help="re-render a run's results.json (Markdown, HTML), or print its schema")
    report.add_argument("results", nargs="?", type=Path, metavar="RESULTS_JSON")
    report.add_argument("--md", type=Path, metavar="FILE", help="write the Markdown summary here (default: standard output)")
    report.add_argument("--html", type=Path, metavar="FILE", help="write the HTML report here")
    report.add_argument("--schema", action="store_true", help="print the JSON Schema of results.json and exit")
    args = parser.parse_args(argv)
    if args.command == "report":
        return _report(args.results, args.md, args.html, args.schema)
    return _validate(args.files)


def _report(results: Path | None, markdown: Path | None, html: Path | None, schema: bool) -> int:
    import json

    from robustgate.reports.markdown import render_markdown
    from robustgate.reports.results import SCHEMA, SCHEMA_VERSION

    if schema:
        print(json.dumps(SCHEMA, indent=2))
        return 0
    if results is None:
        print("robustgate report: give a results.json (written by a run under --robustgate-report, default reports/)", file=sys.stderr)
        return 2
    try:
        doc = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        print(f"{results}: cannot read results: {err}", file=sys.stderr)
        return 1
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        found = doc.get("schema_version") if isinstance(doc, dict) else None
        print(f"{results}: results schema version {found!r}, this robustgate reads {SCHEMA_VERSION}", file=sys.stderr)
        return 1
    if html is not None:
        from robustgate.reports.html import render_html

        html.write_text(render_html(doc), encoding="utf-8")
    text = render_markdown(doc)
    if markdown is None and html is not None:
        return 0
    if markdown is None:
        sys.stdout.write(text)
    else:
        markdown.write_text(text, encoding="utf-8")
    return 0


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

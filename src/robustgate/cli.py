"""The ``robustgate`` command: checks specs and prints their JSON Schema, re-renders and merges results, and
fetches pretrained weights."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from robustgate.errors import RobustgateError
from robustgate.spec import load_cases


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robustgate", description="Robustness contracts for compressed models.")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser(
        "validate", help="check spec files, or every spec under a folder, without building or evaluating anything: "
        "their contents, and that what they name is there (data, weights files, factories, class counts)")
    validate.add_argument("files", nargs="+", type=Path, metavar="PATH", help="a spec file or a folder of them")
    validate.add_argument("--profile", metavar="NAME",
                          help="check only this entry of each spec's profiles: (default: the spec, then every profile)")
    commands.add_parser("schema", help="print the JSON Schema (draft 2020-12) of spec files, for editors: "
                        "robustgate schema > robustgate-spec.schema.json")
    report = commands.add_parser("report", help="re-render a run's results.json (Markdown, HTML), or print its schema")
    report.add_argument("results", nargs="?", type=Path, metavar="RESULTS_JSON")
    report.add_argument("--md", type=Path, metavar="FILE", help="write the Markdown summary here (default: standard output)")
    report.add_argument("--html", type=Path, metavar="FILE", help="write the HTML report here")
    report.add_argument("--schema", action="store_true", help="print the JSON Schema of results.json and exit")
    merge = commands.add_parser("merge", help="join the results.json of shards (CI matrix jobs) into one results.json")
    merge.add_argument("files", nargs="+", type=Path, metavar="FILE", help="the results.json of each shard, in the order to keep")
    merge.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="write the merged results.json here")
    merge.add_argument("--allow-mismatch", action="store_true",
                       help="merge results of different spec contents, environments or baselines "
                            "(kept: the first file's; the others are noted) (default: refuse)")
    merge.add_argument("--md", type=Path, metavar="FILE", help="also write the merged Markdown summary here")
    merge.add_argument("--html", type=Path, metavar="FILE", help="also write the merged HTML report here")
    fetch = commands.add_parser("fetch-weights", help="download torchvision's pretrained weights for `weights: imagenet` "
                                "into torch hub's folder ($TORCH_HOME/hub/checkpoints); runs never download")
    fetch.add_argument("arch", metavar="ARCH", help="a torchvision architecture, e.g. resnet18")
    fetch.add_argument("--weights", default="imagenet", metavar="NAME",
                       help="imagenet (the default entry) or a torchvision weights name such as IMAGENET1K_V1")
    fetch.add_argument("--mirror", metavar="URL", help="a URL folder holding the same file as torchvision's (default: torchvision's URL)")
    cache = commands.add_parser("cache", help="show what the artifact cache holds, or remove what no run can use")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    for name, text in (("info", "entries and sizes per kind, and what prune would remove"),
                       ("prune", "remove damaged entries, entries of other library versions and files left by "
                                 "interrupted writes (with --older-than, also entries unused that long)")):
        sub = cache_commands.add_parser(name, help=text)
        sub.add_argument("--cache-dir", type=Path, default=Path(".robustgate-cache"), metavar="DIR",
                         help="the cache folder (default: .robustgate-cache, a run's default under its rootdir)")
    cache_commands.choices["prune"].add_argument("--older-than", type=float, metavar="DAYS",
                                                 help="also remove entries no run has read for DAYS days")
    cache_commands.choices["prune"].add_argument("--dry-run", action="store_true", help="list what would go; remove nothing")
    args = parser.parse_args(argv)
    if args.command == "cache":
        return _cache(args)
    if args.command == "report":
        return _report(args.results, args.md, args.html, args.schema)
    if args.command == "fetch-weights":
        return _fetch_weights(args.arch, args.weights, args.mirror)
    if args.command == "schema":
        return _schema()
    if args.command == "merge":
        return _merge(args.files, args.output, args.allow_mismatch, args.md, args.html)
    return _validate(args.files, args.profile)


def _schema() -> int:
    import json

    from robustgate.spec.json_schema import spec_json_schema

    print(json.dumps(spec_json_schema(), indent=2))
    return 0


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
    if not isinstance(doc, dict) or doc.get("schema_version") not in range(1, SCHEMA_VERSION + 1):  # older: upgraded
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


def _merge(files: list[Path], output: Path, allow_mismatch: bool, markdown: Path | None, html: Path | None) -> int:
    import json

    from robustgate.reports.merge import MergeRefused, merge_results, mismatches
    from robustgate.reports.results import write_json

    docs = []
    for path in files:
        try:
            docs.append((str(path), json.loads(path.read_text(encoding="utf-8"))))
        except OSError as err:
            print(f"{path}: cannot read results: {err.strerror or err}", file=sys.stderr)
            return 1
        except ValueError as err:
            print(f"{path}: cannot read results: not JSON ({err})", file=sys.stderr)
            return 1
    try:
        merged = merge_results(docs, allow_mismatch)
    except MergeRefused as err:
        print(err, file=sys.stderr)
        return 1
    for difference in mismatches(docs):  # allowed, or the merge above would have refused
        print(f"robustgate merge: merged anyway: {difference.message}", file=sys.stderr)
    try:
        write_json(output, merged)
        if markdown is not None:
            from robustgate.reports.markdown import render_markdown

            markdown.write_text(render_markdown(merged), encoding="utf-8")
        if html is not None:
            from robustgate.reports.html import render_html

            html.write_text(render_html(merged), encoding="utf-8")
    except OSError as err:
        print(f"{err.filename or output}: cannot write: {err.strerror or err}", file=sys.stderr)
        return 1
    print(f"merged {len(merged['items'])} items from {len(docs)} files into {output} (exit status {merged['exit_status']})")
    return merged["exit_status"]  # the merged run's verdict, as pytest's own exit status would have been


def _cache(args: argparse.Namespace) -> int:
    from robustgate.cache_inventory import CURRENT, prune, scan

    root: Path = args.cache_dir
    if not root.is_dir():
        print(f"robustgate cache: no cache folder at {root} (a run writes .robustgate-cache under its rootdir, "
              "or where --robustgate-cache-dir says)", file=sys.stderr)
        return 1
    if args.cache_command == "prune":
        if args.older_than is not None and args.older_than < 0:
            print(f"robustgate cache prune: --older-than takes a number of days >= 0 (got {args.older_than:g})", file=sys.stderr)
            return 2
        pruned = prune(root, args.older_than, args.dry_run)
        for found in pruned.removed:
            reason = f"{found.state}: {found.problem}" if found.problem else found.state
            reason = reason if found.state != CURRENT else f"unused for {args.older_than:g}+ days"
            print(f"{'would remove' if args.dry_run else 'removed'} {found.path} ({_megabytes(found.size)}, {reason})")
        for found in pruned.busy:
            print(f"kept {found.path}: a run is building it now", file=sys.stderr)
        freed = sum(found.size for found in pruned.removed)
        print(f"{'would free' if args.dry_run else 'freed'} {_megabytes(freed)} in {len(pruned.removed)} files")
        return 0
    files = scan(root)
    entries = [found for found in files if found.state == CURRENT]
    print(f"robustgate cache at {root}: {len(entries)} usable entries, {_megabytes(sum(f.size for f in entries))}")
    kinds = sorted({found.kind for found in entries})
    if kinds:
        print(f"  {'kind':<10} {'entries':>7} {'size':>10}  last used")
        for kind in kinds:
            mine = [found for found in entries if found.kind == kind]
            last = time.strftime("%Y-%m-%d %H:%M", time.localtime(max(found.last_used for found in mine)))
            print(f"  {kind:<10} {len(mine):>7} {_megabytes(sum(f.size for f in mine)):>10}  {last}")
    unusable = [found for found in files if found.state != CURRENT]
    for state in sorted({found.state for found in unusable}):
        mine = [found for found in unusable if found.state == state]
        print(f"  unusable, {state}: {len(mine)} files, {_megabytes(sum(f.size for f in mine))}")
        damaged = [found for found in mine if found.problem]
        for found in damaged[:5]:
            print(f"    {found.path}: {found.problem}")
        if len(damaged) > 5:
            print(f"    and {len(damaged) - 5} more")
    if unusable:
        print("  `robustgate cache prune` removes the unusable files")
    return 0


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _fetch_weights(arch: str, weights: str, mirror: str | None) -> int:
    from robustgate.models.pretrained import fetch

    try:
        path = fetch(arch, weights, mirror)
    except RobustgateError as err:
        print(f"robustgate fetch-weights: {err}", file=sys.stderr)
        return 1
    print(f"fetched {path} ({path.stat().st_size / 1e6:.1f} MB); specs with weights: {weights} and arch: {arch} now load it")
    return 0


def _validate(paths: list[Path], profile: str | None = None) -> int:
    from robustgate.plan import planned_pairs
    from robustgate.spec.parse import problems_error
    from robustgate.spec.preflight import preflight
    from robustgate.spec.profiles import profile_names

    files, failed = _spec_files(paths)
    for path in files:
        problems: dict[tuple[int, str], None] = {}  # the same problem in several profiles or cases: once
        notes: dict[str, dict[str, None]] = {}  # why -> what
        summaries, shown, broken = [], str(path), None
        # without --profile: the spec as written, then each profile (a broken one would wait for its first use)
        for chosen in [profile] if profile else [None, *profile_names(path)]:
            try:
                specs = load_cases(path, chosen)
            except RobustgateError as err:
                broken = err
                break
            for case in specs:
                checked = preflight(case)
                problems.update(dict.fromkeys(checked.problems))
                for why, what in checked.notes.items():
                    notes.setdefault(why, {}).update(dict.fromkeys(what))
            spec, shown = specs[0], specs[0].lines.path
            cases = f"{len(specs)} matrix case{'s' if len(specs) != 1 else ''}, " if spec.case else ""
            summaries.append(
                f"ok: {path}{f' (profile {spec.profile})' if spec.profile else ''} ({cases}{len(spec.datasets)} datasets, "
                f"{len(spec.variants) + 1} models, {len(spec.contracts)} contracts{' each' if spec.case else ''}, "
                f"{sum(len(planned_pairs(case)) for case in specs)} items)"
            )
        if problems:
            failed += 1
            print(problems_error(shown, list(problems)), file=sys.stderr)
        else:
            for summary in summaries:
                print(summary)
            for why, named in notes.items():
                print(f"  note: {', '.join(named)}: {why}")
        if broken is not None:
            failed += 1
            print(broken, file=sys.stderr)
    return 1 if failed else 0


def _spec_files(paths: list[Path]) -> tuple[list[Path], int]:
    """The spec files ``paths`` name: files as given, and under a folder every YAML file with the top-level
    ``robustgate:`` key (hidden folders left out); and how many paths named none (each said on stderr)."""
    from robustgate.spec import is_spec_file

    files, empty = [], 0
    for path in paths:
        if not path.is_dir():
            files.append(path)  # a missing or non-spec file: loading it says what is wrong
            continue
        found = []
        for folder, subfolders, names in os.walk(path):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith(".") and name != "__pycache__")
            found += [Path(folder) / name for name in sorted(names) if is_spec_file(Path(folder) / name)]
        if not found:
            empty += 1
            print(f"{path}: no spec files in this folder (YAML files with a top-level `robustgate:` key)", file=sys.stderr)
        files += found
    return files, empty


if __name__ == "__main__":
    raise SystemExit(main())

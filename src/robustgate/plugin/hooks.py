"""robustgate's pytest hooks (the ``pytest11`` entry point).

This module is imported by every pytest run in an environment where robustgate
is installed, so torch and the rest are imported only once a spec is collected.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from robustgate.plugin.shard import parse_shard, select
from robustgate.reports.results import model_label
from robustgate.reports.table import RESULT, SummaryRow, render_summary

if TYPE_CHECKING:
    from robustgate.cache import ArtifactCache
    from robustgate.reports.baseline import BaselineRelease
    from robustgate.reports.results import ItemResult
    from robustgate.spec import Spec
    from robustgate.workspace import Workspace

# Any YAML file pytest walks into is a spec when it carries the top-level `robustgate:` key, wherever it
# lies (a spec kept beside the unit tests must not be skipped in silence); the ini key narrows this.
DEFAULT_PATTERNS = ["*.yaml", "*.yml"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("robustgate", "robustness contracts for compressed models")
    group.addoption(
        "--robustgate-cache-dir",
        metavar="DIR",
        default=None,
        help="where trained weights, compressed models and predictions are cached "
        "(default: the robustgate_cache_dir ini value, else .robustgate-cache under the rootdir)",
    )
    group.addoption(
        "--robustgate-no-cache",
        action="store_true",
        default=False,
        help="build everything afresh and store nothing (default: use the cache)",
    )
    group.addoption(
        "--robustgate-force-latency",
        action="store_true",
        default=False,
        help="time latency contracts even under pytest-xdist (by default they are skipped there: parallel "
        "workers share the cores, so their timings measure the load)",
    )
    group.addoption(
        "--robustgate-report",
        metavar="DIR",
        default="reports",
        help="where report.html, results.json and summary.md are written at the end of a run with contracts, "
        "also a failed or interrupted one (default: reports/ under the rootdir)",
    )
    group.addoption(
        "--robustgate-profile",
        metavar="NAME",
        default=None,
        help="merge this entry of each spec's `profiles:` over the spec (e.g. cpu: fewer epochs, smaller images); "
        "specs without profiles run as written (default: no profile)",
    )
    group.addoption(
        "--robustgate-shard",
        metavar="I/N",
        default=None,
        help="run part I of N of the robustgate contracts (one CI machine of N), whole models at a time and "
        "deterministically; `robustgate merge` joins the N results.json files (default: run them all)",
    )
    group.addoption(
        "--robustgate-baseline",
        metavar="PREV_JSON",
        default=None,
        help="the previous release's results (a results.json, or a file written by --robustgate-save-baseline): "
        "max_regression gates compare with it, and the report shows each metric's change",
    )
    group.addoption(
        "--robustgate-save-baseline",
        metavar="PATH",
        default=None,
        help="also write this run's results with per-image outcomes to PATH, for the next release's "
        "--robustgate-baseline (paired comparisons on the same images)",
    )
    parser.addini("robustgate_cache_dir", "robustgate's artifact cache folder, relative to the rootdir", default=None)
    parser.addini(
        "robustgate_patterns",
        "glob patterns (on paths relative to the rootdir) of the YAML files that are robustgate specs when they "
        "carry the top-level robustgate: key; files named on the command line are always read "
        "(default: *.yaml, *.yml: every such file pytest walks into)",
        type="linelist",
        default=DEFAULT_PATTERNS,
    )


class RobustgateSession:
    """Per-pytest-session state: the cache, one workspace per spec, and the summary rows.

    Registered as a plugin object so its hooks see this session's state only.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._cache: ArtifactCache | None = None
        self.workspaces: dict[tuple[Path, str | None], Workspace] = {}  # by spec file and matrix case
        self.results: list[ItemResult] = []
        self.not_run: list[str] = []  # contracts collected that never reported (an interrupted run, -x, --maxfail)
        self.interrupted = False
        self.xdist_collected: list[str] | None = None  # the node ids a pytest-xdist worker collected (on the controller)
        self.specs: dict[str, dict[str, str]] = {}  # spec (as item ids name it) -> name and content hash
        self.started = time.perf_counter()
        self.collected: float | None = None
        self.report_errors: list[str] = []  # reports that could not be written, shown in the terminal summary
        self.per_image: dict[str, dict[str, Any]] = {}  # nodeid -> metric -> packed outcomes, for a saved baseline
        self.baseline: BaselineRelease | None = None
        chosen_shard = config.getoption("robustgate_shard", None)
        self.shard = parse_shard(chosen_shard) if chosen_shard else None
        self.shard_summary: str | None = None
        chosen = config.getoption("robustgate_baseline", None)
        if chosen:
            from robustgate.errors import RobustgateError
            from robustgate.reports.baseline import BaselineRelease

            try:
                self.baseline = BaselineRelease.load(self._path(chosen))
            except RobustgateError as err:
                raise pytest.UsageError(f"--robustgate-baseline: {err}") from None

    @property
    def saving_baseline(self) -> bool:
        return bool(self.config.getoption("robustgate_save_baseline", None))

    def _path(self, option: str) -> Path:
        path = Path(option)
        return path if path.is_absolute() else self.config.invocation_params.dir / path

    @property
    def cache(self) -> "ArtifactCache":
        if self._cache is None:
            from robustgate.cache import ArtifactCache

            root = None if self.config.getoption("robustgate_no_cache") else self._cache_dir()
            self._cache = ArtifactCache(root, explain=self.progress)  # a warm run says why it rebuilds something
        return self._cache

    def _cache_dir(self) -> Path:
        chosen = self.config.getoption("robustgate_cache_dir") or self.config.getini("robustgate_cache_dir")
        path = Path(chosen) if chosen else Path(".robustgate-cache")
        return path if path.is_absolute() else self.config.rootpath / path

    def workspace(self, spec: "Spec") -> "Workspace":
        key = (spec.path, spec.case)
        if key not in self.workspaces:
            from robustgate.workspace import Workspace

            self.workspaces[key] = Workspace(spec, self.cache, self.progress)
        return self.workspaces[key]

    def progress(self, message: str) -> None:
        """Long work (training, compression) reports progress on the terminal, unless -q."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if self.config.get_verbosity() < 0 or reporter is None:
            return
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(f"robustgate: {message}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Results come from reports, not items, so they also arrive from pytest-xdist workers; an item skipped or
        # broken in setup has no call report, and is recorded (and tabled) from its setup report.
        properties = dict(report.user_properties)
        if "robustgate.contract" not in properties:
            return
        if _ended(report):
            result = _item_result(report, properties)
            if self.baseline is not None:
                result.previous = self.baseline.compared(report.nodeid, result.metrics)
            self.results.append(result)
            per_image = (getattr(report, "robustgate", None) or {}).get("per_image")
            if per_image:
                self.per_image[report.nodeid] = per_image

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if _ended(report) and any(name == "robustgate.contract" for name, _ in item.user_properties):
            # on the item, so the teardown report (whose properties JUnit XML writes) carries it
            item.user_properties.append(("robustgate.outcome", _outcome(report, dict(report.user_properties))))
        record = getattr(item, "robustgate_record", None)
        if call.when == "call" and record is not None:
            report.robustgate = record  # a plain dict: pytest-xdist carries it from the worker
            if self.config.getoption("htmlpath", None):  # pytest-html is writing a report: add our rows' extras
                from dataclasses import asdict

                from robustgate.plugin.html_extras import item_extras

                result = _item_result(report, dict(report.user_properties))
                report.extras = [*getattr(report, "extras", []), *item_extras(asdict(result))]
        spec = getattr(item, "spec", None)
        key = item.nodeid.split("::")[0]  # as items name their spec: relative, so shards from other checkouts agree
        if spec is not None and key not in self.specs:
            from robustgate.reports.results import spec_digest

            self.specs[key] = {"name": spec.name, "sha256": spec_digest(spec.path, spec.profile)}
            if spec.profile:
                self.specs[key]["profile"] = spec.profile
            if spec.model.trusted:  # reports say which weights were unpickled, since that may run code
                self.specs[key]["trusted"] = spec.model.weights
            from robustgate.spec.paths import paths_read

            if paths := paths_read(spec):  # and which files and folders the spec read
                self.specs[key]["paths"] = paths
        return report

    @pytest.hookimpl(tryfirst=True)  # before -k/-m deselect: a model's shard depends on the collection alone
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.shard is None:
            return
        kept, left, self.shard_summary = select(items, *self.shard)
        if left:
            config.hook.pytest_deselected(items=left)
            items[:] = kept

    def pytest_report_collectionfinish(self, config: pytest.Config, start_path: Path, items: list[pytest.Item]) -> str | None:
        return self.shard_summary

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = time.perf_counter()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self.xdist_collected is None:  # every worker collects the same items
            self.xdist_collected = list(ids)

    def _contracts_not_run(self, session: pytest.Session) -> list[str]:
        """The robustgate items collected (after -k, -m and sharding) that never reported."""
        if self.xdist_collected is not None:  # the controller of pytest-xdist holds no items, only the workers' ids
            from robustgate.spec.parse import is_spec_file

            files: dict[str, bool] = {}
            for nodeid in self.xdist_collected:
                path = nodeid.split("::")[0]
                if path not in files:
                    files[path] = "::" in nodeid and is_spec_file(self.config.rootpath / path)
            collected = [nodeid for nodeid in self.xdist_collected if files[nodeid.split("::")[0]]]
        else:
            collected = [item.nodeid for item in session.items
                         if any(name == "robustgate.contract" for name, _ in item.user_properties)]
        reported = {result.nodeid for result in self.results}
        return [nodeid for nodeid in collected if nodeid not in reported]

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller reports
            return
        self.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        # a --collect-only run ran nothing on purpose; a run that stopped early says which contracts it never ran
        self.not_run = self._contracts_not_run(session) if exitstatus != pytest.ExitCode.OK else []
        if not self.results and not self.not_run:  # no contracts were to run
            return
        from robustgate.reports.html import render_html
        from robustgate.reports.markdown import render_markdown
        from robustgate.reports.results import document, write_json

        end = time.perf_counter()
        timings = {"total_seconds": end - self.started, "contracts_seconds": sum(r.duration for r in self.results)}
        for result in self.results:  # where the contracts' time went: training, compression, prediction, ...
            for phase, seconds in result.phases.items():
                timings[f"{phase}_seconds"] = timings.get(f"{phase}_seconds", 0.0) + seconds
        if self.collected is not None:
            timings["collection_seconds"] = self.collected - self.started
        doc = document(self.results, self.specs, int(exitstatus), self.interrupted, timings, self.not_run)
        if self.baseline is not None:
            doc["baseline"] = self.baseline.describe()
        if self.shard is not None:
            doc["shard"] = {"index": self.shard[0], "count": self.shard[1]}
        folder = self._report_dir()
        write_json(folder / "results.json", doc)
        if self.saving_baseline:
            target = self._path(self.config.getoption("robustgate_save_baseline"))
            try:
                write_json(target, {**doc, "per_image": self.per_image})
            except OSError as err:  # the run's own results are written; say so rather than crash the session
                self.report_errors.append(f"the baseline was not saved to {target}: {err.strerror or err}")
        (folder / "summary.md").write_text(render_markdown(doc), encoding="utf-8")
        try:
            (folder / "report.html").write_text(render_html(doc), encoding="utf-8")
        except Exception as err:  # a plot that cannot be drawn must not hide the run's own summary
            self.report_errors.append(f"report.html was not written: {type(err).__name__}: {err}")

    def _report_dir(self) -> Path:
        folder = Path(self.config.getoption("robustgate_report"))
        return folder if folder.is_absolute() else self.config.rootpath / folder

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results and not self.not_run:
            return
        quiet = self.config.get_verbosity() < 0
        terminalreporter.section("robustgate", sep="=", bold=True)
        rows = [_summary_row(result) for result in self.results]
        for line in render_summary(rows, quiet=quiet, not_run=self.not_run, interrupted=self.interrupted):
            terminalreporter.write_line(line)
        if not quiet:
            folder = self._report_dir()
            terminalreporter.write_line(f"reports: {folder / 'report.html'}, results.json, summary.md")
        for error in self.report_errors:
            terminalreporter.write_line(f"robustgate: {error}", red=True)
        cache = self._cache
        if cache is not None and cache.root is not None and not quiet and (cache.hits or cache.misses):
            terminalreporter.write_line(f"cache: {cache.hits} artifacts reused, {cache.misses} built ({cache.root})")


def _ended(report: pytest.TestReport) -> bool:
    """Whether this report ends the item's run: its call, or a setup that skipped or broke (no call follows)."""
    return report.when == "call" or (report.when == "setup" and not report.passed)


def _outcome(report: pytest.TestReport, properties: dict[str, Any]) -> str:
    """passed, skipped, failed (a broken gate) or error (the contract could not be evaluated).

    JUnit XML gets it as the ``robustgate.outcome`` property: pytest writes both a broken gate and an error
    raised while evaluating as ``<failure>`` (an error in setup as ``<error>``)."""
    if report.passed or report.skipped:
        return report.outcome
    return "failed" if properties.get("robustgate.verdict") == "fail" else "error"


def _summary_row(result: "ItemResult") -> SummaryRow:
    """The terminal table's row: the gates as summary.md and report.html show them (relative ones with the value they
    read against), or the error's or skip's message."""
    from dataclasses import asdict

    from robustgate.reports.breakdown import describe_measured

    record = asdict(result)
    return SummaryRow(spec=result.spec, model=model_label(record), contract=result.contract,
                      result=RESULT[result.outcome], detail=describe_measured(record))


def _first_line(report: pytest.TestReport) -> str:
    """A skip's reason (pytest keeps it as (file, line, "Skipped: why")), a robustgate error's first line, or
    for any other exception its own line (``RuntimeError: ...``), not the first line of its traceback."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        return crash.message.strip().splitlines()[0]
    text = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr or "")
    text = text.strip().removeprefix("Skipped: ")
    return text.splitlines()[0] if text else ""


def _item_result(report: pytest.TestReport, properties: dict[str, Any]) -> "ItemResult":
    from robustgate.reports.results import ItemResult, finite

    record = getattr(report, "robustgate", None) or {}
    outcome = _outcome(report, properties)
    metrics = {}
    for key, value in properties.items():
        if key.startswith("robustgate.") and isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[key.removeprefix("robustgate.")] = finite(value)
    gates = [{**gate, **{k: finite(gate[k]) for k in ("threshold", "estimate", "value")}} for gate in record.get("gates", [])]
    message = _first_line(report) if outcome in ("error", "skipped") else ""
    return ItemResult(
        nodeid=report.nodeid, spec=report.nodeid.split("::")[0], model=str(properties["robustgate.model"]),
        contract=str(properties["robustgate.contract"]), outcome=outcome, duration=float(report.duration),
        metrics=metrics, gates=gates, findings=list(record.get("findings", [])), notes=list(record.get("notes", [])),
        caveats=list(record.get("caveats", [])),
        message=message, technique=str(properties.get("robustgate.technique", "")),
        settings=str(properties.get("robustgate.settings", "")),
        case=str(properties.get("robustgate.case", "")),
        kind=str(properties.get("robustgate.kind", "")), datasets=str(properties.get("robustgate.datasets", "")).split(),
        series={name: [v for v in map(float, values) if math.isfinite(v)] for name, values in record.get("series", {}).items()},
        phases={name: float(seconds) for name, seconds in record.get("phases", {}).items()},
    )


_SESSION = pytest.StashKey[RobustgateSession]()


def session_of(config: pytest.Config) -> RobustgateSession:
    return config.stash[_SESSION]


def pytest_configure(config: pytest.Config) -> None:
    session = RobustgateSession(config)
    config.stash[_SESSION] = session
    config.pluginmanager.register(session, "robustgate-session")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    named = parent.session.isinitpath(file_path)
    if not (named or _matches(file_path, parent.config)):
        return None
    from robustgate.spec.parse import is_spec_file

    if not is_spec_file(file_path):
        if named:  # asked for by name: say why nothing runs, rather than pytest's "not found"
            from robustgate.plugin.items import NotASpec

            return NotASpec.from_parent(parent, path=file_path)
        return None
    from robustgate.plugin.items import SpecFile

    return SpecFile.from_parent(parent, path=file_path)


def _matches(path: Path, config: pytest.Config) -> bool:
    try:
        relative = path.relative_to(config.rootpath).as_posix()
    except ValueError:
        relative = path.as_posix()
    return any(fnmatch.fnmatch(relative, pattern) for pattern in config.getini("robustgate_patterns"))

"""robustgate's pytest hooks (the ``pytest11`` entry point).

This module is imported by every pytest run in an environment where robustgate
is installed, so torch and the rest are imported only once a spec is collected.
"""

from __future__ import annotations

import argparse

import contextlib
import fnmatch
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from robustgate.plugin.shard import parse_shard, select
from robustgate.reports.record import ItemRecord
from robustgate.reports.results import model_label
from robustgate.reports.table import RESULT, SummaryRow, render_summary

if TYPE_CHECKING:
    from robustgate.cache import ArtifactCache
    from robustgate.reports.previous_release import PreviousRelease
    from robustgate.evaluation import SpecEvaluation
    from robustgate.spec import Spec

# Any YAML file pytest walks into is a spec when it carries the top-level `robustgate:` key, wherever it
# lies (a spec kept beside the unit tests must not be skipped in silence); the ini key narrows this.
DEFAULT_PATTERNS = ["*.yaml", "*.yml"]


def path_option(text: str) -> Path:
    """A path option's value; an empty one (``--robustgate-report=``, an unset CI variable) is a usage error,
    not the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("needs a path, got an empty value")
    return Path(text)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("robustgate", "robustness contracts for compressed models")
    group.addoption(
        "--robustgate-cache-dir",
        metavar="DIR",
        type=path_option,
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
        type=path_option,
        default=Path("reports"),
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
        type=parse_shard,
        default=None,
        help="run part I of N of the robustgate contracts (one CI machine of N), whole models at a time and "
        "deterministically; `robustgate merge` joins the N results.json files (default: run them all)",
    )
    group.addoption(
        "--robustgate-baseline",
        metavar="PREV_JSON",
        type=path_option,
        default=None,
        help="the previous release's results (a results.json, or a file written by --robustgate-save-baseline): "
        "max_regression gates compare with it, and the report shows each metric's change",
    )
    group.addoption(
        "--robustgate-save-baseline",
        metavar="PATH",
        type=path_option,
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
    """Per-pytest-session state: the cache, one evaluation per spec, and the summary rows.

    Registered as a plugin object so its hooks see this session's state only.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._cache: ArtifactCache | None = None
        self.evaluations: dict[tuple[Path, str | None], SpecEvaluation] = {}  # by spec file and matrix case
        # per spec file and case: (variant, dataset, samples, corruptions, severities) its selected corruptions
        # items will predict, handed to its predictions when its evaluation is built (collection imports no torch)
        self.corruption_plan: dict[tuple[Path, str | None], list[tuple[str, str, int | None, tuple[str, ...], tuple[int, ...]]]] = {}
        self.records: list[ItemRecord] = []  # every robustgate item's, as its reports carried them
        self.not_run: list[str] = []  # contracts collected that never reported (an interrupted run, -x, --maxfail)
        self.interrupted = False
        self.xdist_collected: list[str] | None = None  # the node ids a pytest-xdist worker collected (on the controller)
        # spec (as item ids name it) -> name, content hash, ...: recorded at collection (on xdist's workers, which
        # send them to the controller); results.json lists those of the items that reported
        self.specs: dict[str, dict[str, Any]] = {}
        self.started = time.perf_counter()
        self.collected: float | None = None
        self.report_errors: list[str] = []  # reports that could not be written, shown in the terminal summary
        self.shard: tuple[int, int] | None = config.getoption("robustgate_shard", None)
        self.shard_summary: str | None = None
        self.previous_release: PreviousRelease | None = None  # --robustgate-baseline: what max_regression compares with
        chosen = config.getoption("robustgate_baseline", None)
        if chosen:
            from robustgate.errors import RobustgateError
            from robustgate.reports.previous_release import PreviousRelease

            try:
                self.previous_release = PreviousRelease.load(self._path(chosen))
            except RobustgateError as err:
                raise pytest.UsageError(f"--robustgate-baseline: {err}") from None

    @property
    def saving_release(self) -> bool:
        """Whether this run saves itself, per-image outcomes included, for the next release to compare with."""
        return self.config.getoption("robustgate_save_baseline", None) is not None

    def _path(self, option: Path) -> Path:
        return option if option.is_absolute() else self.config.invocation_params.dir / option

    def spec_collected(self, key: str, spec: "Spec") -> None:
        """What results.json says of a spec file (``key``: as item ids name it, relative to the rootdir, so shards
        from other checkouts agree): its name, content hash and profile, the weights it unpickled with
        ``trusted: true`` (which may run code) and the files and folders it read. A matrix's first case speaks
        for its file."""
        if key in self.specs:
            return
        from robustgate.reports.results import spec_digest
        from robustgate.spec.paths import paths_read

        entry: dict[str, Any] = {"name": spec.name, "sha256": spec_digest(spec.path, spec.profile)}
        if spec.profile:
            entry["profile"] = spec.profile
        if spec.model.trusted:
            entry["trusted"] = spec.model.weights
        if paths := paths_read(spec):
            entry["paths"] = paths
        self.specs[key] = entry

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

    def evaluation(self, spec: "Spec") -> "SpecEvaluation":
        """``spec``'s evaluation, built once per session; through ``other_case`` its contracts reach the
        other matrix cases of its file (a ``compare:`` between cases)."""
        key = (spec.path, spec.case)
        if key not in self.evaluations:
            from robustgate.evaluation import SpecEvaluation

            def other_case(case: str) -> SpecEvaluation:
                return self._case_evaluation(spec, case)

            self.evaluations[key] = built = SpecEvaluation.build(spec, self.cache, self.progress, other_case)
            for planned in self.corruption_plan.get(key, []):
                built.predictions.plan_corrupted(*planned)
        return self.evaluations[key]

    def _case_evaluation(self, spec: "Spec", case: str) -> "SpecEvaluation":
        """The evaluation of matrix case ``case`` of ``spec``'s file, its spec read as collection reads it."""
        if (spec.path, case) in self.evaluations:
            return self.evaluations[(spec.path, case)]
        from robustgate.errors import SpecError
        from robustgate.spec import load_cases

        cases = {other.case: other for other in load_cases(spec.path, self.config.getoption("robustgate_profile", None))}
        if case not in cases:
            named = ", ".join(name for name in cases if name)
            raise SpecError(f"{spec.path.name} has no matrix case '{case}'",
                            hint=f"name one of its cases: {named}" if named else "the spec has no matrix: section")
        return self.evaluation(cases[case])

    def progress(self, message: str) -> None:
        """Long work (training, compression) reports progress on the terminal, unless -q."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if self.config.get_verbosity() < 0 or reporter is None:
            return
        from robustgate.plugin.progress_bars import bars_cleared

        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with bars_cleared(), capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(f"robustgate: {message}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Records come from reports, not items, so they also arrive from pytest-xdist workers; an item skipped or
        # broken in setup has no call report, and its setup report carries its record.
        carried = getattr(report, "robustgate", None)
        if carried is not None:
            self.records.append(ItemRecord.from_wire(carried))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        record: ItemRecord | None = getattr(item, "robustgate_record", None)
        if record is None or not _ended(report):
            return report
        record.ended(report.passed, report.skipped, _first_line(report), float(report.duration))
        report.robustgate = record.to_wire()  # plain data: pytest-xdist carries it from the worker
        # JUnit XML writes the teardown report's properties, which pytest copies from the item
        properties = record.junit_properties()
        item.user_properties.extend(properties)
        report.user_properties.extend(properties)
        if report.when == "call" and record.metrics and self.config.getoption("htmlpath", None):
            from robustgate.plugin.html_extras import item_extras  # pytest-html is writing a report: our rows' extras

            report.extras = [*getattr(report, "extras", []), *item_extras(record.results_item())]
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
        if not hasattr(self.config, "workerinput"):  # an xdist worker does not know which items it will run
            self._plan_corrupted_sets(session.items)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Before the first item, say what the selected contracts cost on a cold cache (not in xdist's workers,
        which each see a share of the items; the controller has none)."""
        if session.config.option.collectonly or hasattr(self.config, "workerinput") or self.config.get_verbosity() < 0:
            return
        from robustgate.plugin.cold_costs import announce_cold_costs

        announce_cold_costs(self, session.items)

    def _plan_corrupted_sets(self, items: list[pytest.Item]) -> None:
        """Note which models each spec's selected corruptions items predict on which corrupted sets, so each set is
        made once for all of them (Predictions.plan_corrupted, when the spec's evaluation is built)."""
        from robustgate.spec.model import BASELINE

        for item in items:
            contract = getattr(item, "contract", None)
            if contract is None or contract.kind != "corruptions":
                continue
            spec, params = item.spec, contract.params  # type: ignore[attr-defined]
            plan = self.corruption_plan.setdefault((spec.path, spec.case), [])
            for variant in dict.fromkeys((item.variant, BASELINE)):  # type: ignore[attr-defined]
                plan.append((variant, params.on, params.samples, tuple(params.names), tuple(params.severities)))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self.xdist_collected is None:  # every worker collects the same items
            self.xdist_collected = list(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """An xdist worker is done: take the specs it collected (a crashed one sent nothing)."""
        for key, entry in getattr(node, "workeroutput", {}).get("robustgate_specs", {}).items():
            self.specs.setdefault(key, entry)

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
            collected = [item.nodeid for item in session.items if hasattr(item, "robustgate_record")]
        reported = {record.nodeid for record in self.records}
        return [nodeid for nodeid in collected if nodeid not in reported]

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller reports
            self.config.workeroutput["robustgate_specs"] = self.specs  # type: ignore[attr-defined]  # set by xdist
            return
        self.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        # a --collect-only run ran nothing on purpose; a run that stopped early says which contracts it never ran
        self.not_run = self._contracts_not_run(session) if exitstatus != pytest.ExitCode.OK else []
        if not self.records and not self.not_run:  # no contracts were to run
            return
        from robustgate.reports.html import render_html
        from robustgate.reports.markdown import render_markdown
        from robustgate.reports.results import document, write_json

        end = time.perf_counter()
        timings = {"total_seconds": end - self.started, "contracts_seconds": sum(r.duration for r in self.records)}
        for record in self.records:  # where the contracts' time went: training, compression, prediction, ...
            for phase, seconds in record.phases.items():
                timings[f"{phase}_seconds"] = timings.get(f"{phase}_seconds", 0.0) + seconds
        if self.collected is not None:
            timings["collection_seconds"] = self.collected - self.started
        reported = {record.spec for record in self.records}
        specs = {key: entry for key, entry in self.specs.items() if key in reported}
        doc = document(self.records, specs, int(exitstatus), self.interrupted, timings, self.not_run)
        if self.previous_release is not None:
            doc["baseline"] = self.previous_release.describe()
        if self.shard is not None:
            doc["shard"] = {"index": self.shard[0], "count": self.shard[1]}
        folder = self._report_dir()
        write_json(folder / "results.json", doc)
        if self.saving_release:
            target = self._path(self.config.getoption("robustgate_save_baseline"))
            per_image = {record.nodeid: record.per_image for record in self.records if record.per_image}
            try:
                write_json(target, {**doc, "per_image": per_image})
            except OSError as err:  # the run's own results are written; say so rather than crash the session
                self.report_errors.append(f"the baseline was not saved to {target}: {err.strerror or err}")
        (folder / "summary.md").write_text(render_markdown(doc), encoding="utf-8")
        try:
            (folder / "report.html").write_text(render_html(doc), encoding="utf-8")
        except Exception as err:  # a plot that cannot be drawn must not hide the run's own summary
            self.report_errors.append(f"report.html was not written: {type(err).__name__}: {err}")

    def _report_dir(self) -> Path:
        folder: Path = self.config.getoption("robustgate_report")
        return folder if folder.is_absolute() else self.config.rootpath / folder

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.records and not self.not_run:
            return
        quiet = self.config.get_verbosity() < 0
        terminalreporter.section("robustgate", sep="=", bold=True)
        rows = [_summary_row(record) for record in self.records]
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


def _summary_row(record: ItemRecord) -> SummaryRow:
    """The terminal table's row: the gates as summary.md and report.html show them (relative ones with the value they
    read against), or the error's or skip's message."""
    from robustgate.reports.breakdown import describe_measured

    item = record.results_item()
    return SummaryRow(spec=record.spec, model=model_label(item), contract=record.contract,
                      result=RESULT[record.outcome], detail=describe_measured(item))


def _first_line(report: pytest.TestReport) -> str:
    """A skip's reason (pytest keeps it as (file, line, "Skipped: why")), a robustgate error's first line, or
    for any other exception its own line (``RuntimeError: ...``), not the first line of its traceback."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        return crash.message.strip().splitlines()[0]
    text = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr or "")
    text = text.strip().removeprefix("Skipped: ")
    return text.splitlines()[0] if text else ""


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

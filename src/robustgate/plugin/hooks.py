"""robustgate's pytest hooks (the ``pytest11`` entry point).

This module is imported by every pytest run in an environment where robustgate
is installed, so torch and the rest are imported only once a spec is collected.
"""

from __future__ import annotations

import contextlib
import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from robustgate.reports.table import SummaryRow, render_summary

if TYPE_CHECKING:
    from robustgate.cache import ArtifactCache
    from robustgate.spec import Spec
    from robustgate.workspace import Workspace

DEFAULT_PATTERNS = ["*robustness_specs/*.yaml", "*robustness_specs/*.yml"]


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
    parser.addini("robustgate_cache_dir", "robustgate's artifact cache folder, relative to the rootdir", default=None)
    parser.addini(
        "robustgate_patterns",
        "glob patterns (on paths relative to the rootdir) of YAML files collected as robustgate specs; "
        "files named on the command line are always collected (default: *robustness_specs/*.yaml, *robustness_specs/*.yml)",
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
        self.workspaces: dict[Path, Workspace] = {}
        self.rows: list[SummaryRow] = []

    @property
    def cache(self) -> "ArtifactCache":
        if self._cache is None:
            from robustgate.cache import ArtifactCache

            self._cache = ArtifactCache(None if self.config.getoption("robustgate_no_cache") else self._cache_dir())
        return self._cache

    def _cache_dir(self) -> Path:
        chosen = self.config.getoption("robustgate_cache_dir") or self.config.getini("robustgate_cache_dir")
        path = Path(chosen) if chosen else Path(".robustgate-cache")
        return path if path.is_absolute() else self.config.rootpath / path

    def workspace(self, spec: "Spec") -> "Workspace":
        if spec.path not in self.workspaces:
            from robustgate.workspace import Workspace

            self.workspaces[spec.path] = Workspace(spec, self.cache, self.progress)
        return self.workspaces[spec.path]

    def progress(self, message: str) -> None:
        """Long work (training, compression) reports progress on the terminal, unless -q."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if self.config.get_verbosity() < 0 or reporter is None:
            return
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(f"robustgate: {message}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Rows come from reports, not items, so they also arrive from pytest-xdist workers.
        properties = dict(report.user_properties)
        if report.when == "call" and "robustgate.contract" in properties:
            self.rows.append(_summary_row(report, properties))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            return
        quiet = self.config.get_verbosity() < 0
        terminalreporter.section("robustgate", sep="=", bold=True)
        for line in render_summary(self.rows, quiet=quiet):
            terminalreporter.write_line(line)
        cache = self._cache
        if cache is not None and cache.root is not None and not quiet and (cache.hits or cache.misses):
            terminalreporter.write_line(f"cache: {cache.hits} artifacts reused, {cache.misses} built ({cache.root})")


def _summary_row(report: pytest.TestReport, properties: dict[str, Any]) -> SummaryRow:
    if report.passed:
        result = "PASS"
    elif properties.get("robustgate.verdict") == "fail":
        result = "FAIL"
    else:
        result = "ERROR"
    detail = properties.get("robustgate.headline")
    if detail is None:
        text = str(report.longrepr or "").strip().splitlines()
        detail = text[0] if text else ""
    return SummaryRow(
        spec=report.nodeid.split("::")[0],
        model=str(properties["robustgate.model"]),
        contract=str(properties["robustgate.contract"]),
        result=result,
        detail=str(detail),
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
    if not (parent.session.isinitpath(file_path) or _matches(file_path, parent.config)):
        return None
    from robustgate.spec.parse import is_spec_file

    if not is_spec_file(file_path):
        return None
    from robustgate.plugin.items import SpecFile

    return SpecFile.from_parent(parent, path=file_path)


def _matches(path: Path, config: pytest.Config) -> bool:
    try:
        relative = path.relative_to(config.rootpath).as_posix()
    except ValueError:
        relative = path.as_posix()
    return any(fnmatch.fnmatch(relative, pattern) for pattern in config.getini("robustgate_patterns"))

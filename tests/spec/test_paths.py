"""Paths in specs: ``${ENV}`` substitution, then resolution against the spec file's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustgate.errors import DataError, RobustgateError
from robustgate.spec.paths import resolve_path


def test_a_relative_path_is_relative_to_the_spec_folder(tmp_path: Path) -> None:
    spec_dir = tmp_path / "specs"
    assert resolve_path("data/site_b", spec_dir) == spec_dir / "data" / "site_b"


def test_a_relative_path_does_not_depend_on_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec_dir = tmp_path / "specs"
    monkeypatch.chdir(tmp_path)
    here = resolve_path("data", spec_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert resolve_path("data", spec_dir) == here == spec_dir / "data"


def test_an_absolute_path_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "datasets" / "office31"
    assert resolve_path(str(target), tmp_path / "specs") == target


def test_a_variable_is_substituted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "office31"
    monkeypatch.setenv("OFFICE31_ROOT", str(root))
    assert resolve_path("${OFFICE31_ROOT}", tmp_path / "specs") == root
    assert resolve_path("${OFFICE31_ROOT}/webcam/images", tmp_path / "specs") == root / "webcam" / "images"


def test_a_variable_holding_a_relative_path_is_relative_to_the_spec_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", "shared/data")
    assert resolve_path("${DATA_DIR}/site_b", tmp_path) == tmp_path / "shared" / "data" / "site_b"


def test_several_variables_are_substituted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RG_BASE", str(tmp_path / "base"))
    monkeypatch.setenv("RG_SITE", "site_b")
    assert resolve_path("${RG_BASE}/${RG_SITE}/${RG_SITE}.d", tmp_path) == tmp_path / "base" / "site_b" / "site_b.d"


def test_a_variable_inside_a_path_segment_is_substituted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RG_SPLIT", "test")
    assert resolve_path("data/digits_${RG_SPLIT}_set", tmp_path) == tmp_path / "data" / "digits_test_set"


def test_a_home_folder_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_path("~/data/office31", tmp_path / "specs") == tmp_path / "home" / "data" / "office31"


def test_an_unset_variable_is_an_error_naming_it_and_how_to_set_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OFFICE31_ROOT", raising=False)
    with pytest.raises(DataError) as info:
        resolve_path("${OFFICE31_ROOT}/webcam", tmp_path)
    err = info.value
    assert isinstance(err, RobustgateError)
    assert "OFFICE31_ROOT" in err.message
    assert "is not set" in err.message
    assert "'${OFFICE31_ROOT}/webcam'" in err.message  # the value it was used in
    assert err.hint is not None and "export OFFICE31_ROOT=" in err.hint
    assert "fix: export OFFICE31_ROOT=" in str(err)


def test_the_unset_variable_is_named_even_after_a_set_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RG_SET", str(tmp_path))
    monkeypatch.delenv("RG_UNSET", raising=False)
    with pytest.raises(DataError) as info:
        resolve_path("${RG_SET}/${RG_UNSET}/x", tmp_path)
    assert info.value.message.startswith("environment variable RG_UNSET is not set")


def test_a_path_without_variables_is_not_touched_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RG_UNSET", raising=False)
    assert resolve_path("plain/RG_UNSET", tmp_path) == tmp_path / "plain" / "RG_UNSET"


def test_an_empty_variable_does_not_turn_a_path_into_an_absolute_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFICE31_ROOT", "")
    with pytest.raises(DataError) as info:
        resolve_path("${OFFICE31_ROOT}/webcam", tmp_path)
    assert "OFFICE31_ROOT" in info.value.message


# --- the project's bounds: a relative path in a spec does not lead out of the project -----------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder (pyproject.toml marks it) with its specs in robustness_specs/, and a folder beside it."""
    root = tmp_path / "project"
    (root / "robustness_specs").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / "data").mkdir()
    (tmp_path / "outside").mkdir()
    return root


def test_a_relative_path_may_go_up_within_the_project(project: Path) -> None:
    assert resolve_path("../data", project / "robustness_specs") == project / "robustness_specs" / ".." / "data"


def test_a_relative_path_that_leaves_the_project_is_refused_naming_both(project: Path) -> None:
    with pytest.raises(DataError) as info:
        resolve_path("../../outside", project / "robustness_specs")
    message = info.value.message
    assert message == (f"'../../outside' leads out of the project ({project}) to {project.parent / 'outside'}; "
                       "a relative path in a spec is not followed out of its project")
    assert info.value.hint is not None and "absolute path" in info.value.hint and "${" in info.value.hint


def test_a_symlink_inside_the_project_to_a_folder_outside_is_refused(project: Path) -> None:
    (project / "data" / "linked").symlink_to(project.parent / "outside")
    with pytest.raises(DataError, match="leads out of the project"):
        resolve_path("../data/linked", project / "robustness_specs")


def test_a_path_the_user_names_may_lie_outside_the_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = project.parent / "outside"
    assert resolve_path(str(outside), project / "robustness_specs") == outside  # absolute
    monkeypatch.setenv("RG_DATA", str(outside))
    assert resolve_path("${RG_DATA}", project / "robustness_specs") == outside  # from the environment
    monkeypatch.setenv("HOME", str(project.parent))
    assert resolve_path("~/outside", project / "robustness_specs") == outside  # the user's home


def test_without_a_project_marker_relative_paths_are_not_bounded(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    assert resolve_path("../elsewhere", tmp_path / "specs") == tmp_path / "specs" / ".." / "elsewhere"

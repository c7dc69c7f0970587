"""Paths in specs: ``${ENV}`` substitution, then resolution against the spec file's folder.

A relative path written in a spec is not followed out of its project (the nearest folder above the spec
holding pyproject.toml, setup.cfg, setup.py, pytest.ini, tox.ini or .git), through ``..`` or a symlink:
a spec from a pull request must not read the reviewer's files. A path the user names on purpose (an
absolute one, ``~/...``, or one built from ``${VARIABLE}``) may lie anywhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from robustgate.errors import DataError

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
PROJECT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", "pytest.ini", "tox.ini", ".git")


def resolve_path(value: str, spec_dir: Path) -> Path:
    """Expand ``${NAME}`` from the environment and make relative paths relative to ``spec_dir``.

    An unset or empty variable is an error rather than an empty string, so ``${OFFICE31_ROOT}/x``
    never silently becomes ``/x``.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if not os.environ.get(name):
            state = "is empty" if name in os.environ else "is not set"
            raise DataError(
                f"environment variable {name} {state} (used in {value!r})",
                hint=f"export {name}=/path/to/the/data before running pytest",
            )
        return os.environ[name]

    path = Path(ENV_REFERENCE.sub(substitute, value)).expanduser()
    if path.is_absolute():
        return path
    if not ENV_REFERENCE.search(value):
        _check_within_project(value, spec_dir / path, spec_dir)
    return spec_dir / path


def project_root(spec_dir: Path) -> Path | None:
    """The nearest folder at or above ``spec_dir`` that marks a project; None when none does."""
    folder = spec_dir.resolve()
    return next((f for f in (folder, *folder.parents) if any((f / m).exists() for m in PROJECT_MARKERS)), None)


def _check_within_project(value: str, path: Path, spec_dir: Path) -> None:
    root = project_root(spec_dir)
    target = path.resolve()  # `..` and symlinks followed, as opening the path would
    if root is not None and not target.is_relative_to(root):
        raise DataError(
            f"{value!r} leads out of the project ({root}) to {target}; a relative path in a spec is not followed "
            "out of its project",
            hint="if the spec is meant to read it, write its absolute path, or ${VARIABLE}/... with the variable set",
        )


def paths_read(spec: Any) -> dict[str, str]:
    """``where in the spec -> absolute path`` of every file or folder a spec reads (weights, image folders), for
    the reports: a reviewer sees what a run touched. Paths that do not resolve are left to fail their items."""
    from robustgate.checkpoints import is_pretrained

    named = []
    if spec.model.weights != "train" and not is_pretrained(spec.model.weights):
        named.append(("model.weights", spec.model.weights))
    for name, entry in spec.datasets.items():
        named += [(f"datasets.{name}.{key}", getattr(entry.params, key)) for key in ("imagefolder", "office31")
                  if getattr(entry.params, key, None)]
    for name, variant in spec.variants.items():  # a variant loaded from a file (artifact:)
        named += [(f"variants.{name}.{step.kind}", step.params.path) for step in variant.steps
                  if isinstance(getattr(step.params, "path", None), str)]
    found = {}
    for where, value in named:
        try:
            found[where] = str(resolve_path(value, spec.directory).resolve())
        except DataError:
            continue
    return found

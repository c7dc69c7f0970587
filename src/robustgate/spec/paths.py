"""Paths in specs: ``${ENV}`` substitution, then resolution against the spec file's folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

from robustgate.errors import DataError

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
    return path if path.is_absolute() else (spec_dir / path)

"""Profiles: one spec, several scales. ``profiles: {cpu: {...}}`` holds partial specs; selecting one
(``--robustgate-profile cpu``, ``robustgate validate --profile cpu``) merges it over the spec before
validation, so a study runs at full size on a GPU and small on a laptop from the same file.

Mappings merge key by key; anything else (a number, a list such as ``contracts:``) is replaced. Errors
in merged values point at the profile's lines. A spec without ``profiles:`` ignores the selection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustgate.errors import SpecError
from robustgate.spec.yamlmarks import LineMap, Loc, load_yaml_with_lines

PROFILES_KEY = "profiles"
_FIXED = ("robustgate", PROFILES_KEY)  # what a profile may not change


def apply_profile(data: dict[str, Any], lines: LineMap, profile: str | None) -> tuple[dict[str, Any], str | None]:
    """``data`` without its ``profiles:``, with ``profile`` merged in; and the profile applied (None: none)."""
    profiles = data.get(PROFILES_KEY)
    base = {key: value for key, value in data.items() if key != PROFILES_KEY}
    if profiles is None:
        return base, None
    named = isinstance(profiles, dict) and all(isinstance(name, str) for name in profiles)
    if not named or not all(isinstance(body, dict) for body in profiles.values()):
        raise SpecError("profiles: expected a mapping of names to partial specs, e.g. profiles: {cpu: {device: cpu}}",
                        where=lines.where((PROFILES_KEY,)))
    for name, body in profiles.items():
        fixed = [key for key in body if key in _FIXED]
        if fixed:
            raise SpecError(f"profiles.{name}: a profile cannot set {', '.join(fixed)}",
                            where=lines.where((PROFILES_KEY, name, fixed[0])))
    if profile is None:
        return base, None
    if profile not in profiles:
        raise SpecError(f"profile '{profile}' is not in this spec; its profiles are: {', '.join(map(str, profiles))}",
                        where=lines.where((PROFILES_KEY,)), hint="pick one of those with --robustgate-profile")
    _point_lines_at_profile(lines, profiles[profile], (PROFILES_KEY, profile), ())
    return _merged(base, profiles[profile]), profile


def profile_names(path: Path) -> list[str]:
    """The names under a spec file's ``profiles:`` (none when it has none or cannot be read: loading reports that)."""
    try:
        data, _ = load_yaml_with_lines(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, SpecError):
        return []
    profiles = data.get(PROFILES_KEY) if isinstance(data, dict) else None
    return [str(name) for name in profiles] if isinstance(profiles, dict) else []


def _merged(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{key: _merged(base.get(key), value) for key, value in override.items()}}
    return override


def _point_lines_at_profile(lines: LineMap, override: Any, source: Loc, target: Loc) -> None:
    """Errors about a merged value name the profile's line, not the base spec's."""
    if target:
        lines.record(target, lines.line(source))
    if isinstance(override, dict):
        for key, value in override.items():
            _point_lines_at_profile(lines, value, source + (key,), target + (key,))
    elif isinstance(override, list):
        for index, value in enumerate(override):
            _point_lines_at_profile(lines, value, source + (index,), target + (index,))

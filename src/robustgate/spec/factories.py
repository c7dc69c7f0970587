"""What ``arch:`` names, checked without building anything: a torchvision classifier, a timm model
(``timm:NAME``, with the ``timm`` extra), or a user factory ``"module:function"`` imported from where pytest users
expect.

A factory module is looked up on ``sys.path`` with two folders in front, under ``pytest`` as under
``robustgate validate``: the spec file's own folder and the rootdir (the nearest folder at or above the spec
holding pytest.ini, pyproject.toml, tox.ini or setup.cfg; else the working directory). So ``mymodels.py``
next to the spec, or at the top of the project, imports under plain ``pytest`` without ``pythonpath = .``.

Nothing here imports torch: torchvision's and timm's model names are read from their source files, and a factory's
module is imported only when :func:`find_factory` is asked for it (the module itself may import torch).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robustgate.errors import ModelError, first_line
from robustgate.registry import did_you_mean

ROOTDIR_MARKERS = ("pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
TORCHVISION = "torchvision"
TIMM = "timm"  # pytorch-image-models: ``timm:mobilenetv3_small_100``, built by timm.create_model(pretrained=False)
# `@register_model()` (or `@register_model(name="x")`) above a builder function, in torchvision/models/*.py
_REGISTERED = re.compile(r"^@register_model\((?:\s*(?:name\s*=\s*)?[\"'](\w+)[\"']\s*)?\)", re.MULTILINE)
_DEF = re.compile(r"^def (\w+)", re.MULTILINE)
# timm's: `@register_model` right above `def name(pretrained=False, **kwargs)`, in timm/models/*.py
_TIMM_REGISTERED = re.compile(r"^@register_model\s*\ndef (\w+)", re.MULTILINE)


def is_factory(arch: str) -> bool:
    """Whether ``arch`` names a user factory (``module:function``) rather than a torchvision architecture."""
    prefix, _, _ = arch.rpartition(":")
    return prefix not in ("", TORCHVISION, TIMM)


def rootdir(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding a pytest configuration file; else the working directory."""
    folder = start.resolve()
    found = next((f for f in (folder, *folder.parents) if any((f / name).is_file() for name in ROOTDIR_MARKERS)), None)
    return found if found is not None else Path.cwd().resolve()


def factory_search_path(spec_path: Path) -> list[Path]:
    """The folders a spec's factory modules are imported from before ``sys.path``: the spec's own, then the rootdir."""
    spec_dir = Path(spec_path).resolve().parent
    return list(dict.fromkeys([spec_dir, rootdir(spec_dir)]))


@contextmanager
def importable_from(folders: list[Path]) -> Iterator[None]:
    """``folders`` at the front of ``sys.path`` (those not on it yet) while the block runs."""
    added = [str(folder) for folder in folders if str(folder) not in sys.path]
    sys.path[:0] = added
    importlib.invalidate_caches()  # a module written since the last import must be found
    try:
        yield
    finally:
        for entry in added:
            if entry in sys.path:
                sys.path.remove(entry)


def find_factory(arch: str, spec_path: Path) -> Callable[..., Any]:
    """The callable ``arch`` (``module:function``) names, its module imported from :func:`factory_search_path`
    (then ``sys.path``). Raises :class:`ModelError` saying what is missing and the closest names there are.

    The module stays imported (in ``sys.modules``); the folders leave ``sys.path`` again afterwards."""
    return import_factory(arch, factory_search_path(spec_path))


def import_factory(arch: str, folders: list[Path]) -> Callable[..., Any]:
    """:func:`find_factory` with the folders given: ``[]`` imports from ``sys.path`` as it is (a run's, where
    collection has already put the spec's folder and the rootdir on it)."""
    module_name, _, attr = arch.rpartition(":")
    with importable_from(folders):
        module = _import_factory_module(module_name, arch, folders)
    factory = getattr(module, attr, None)
    if factory is None:
        names = [name for name, value in vars(module).items() if callable(value) and not name.startswith("_")]
        raise ModelError(f"'{module_name}' has no callable '{attr}'; {did_you_mean(attr, names)}")
    if not callable(factory):
        raise ModelError(f"'{module_name}.{attr}' is a {type(factory).__name__}, not a function that builds the network")
    return factory


def _import_factory_module(module_name: str, arch: str, folders: list[Path]) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name not in (None, module_name) and not module_name.startswith(f"{err.name}."):
            # the module is there; something it imports is not
            hint = f"install {err.name.split('.')[0]}, which {module_name} imports"
            raise _import_failed(module_name, arch, err, folders, hint) from None
        searched = ", ".join(str(folder) for folder in folders) or "sys.path"
        close = difflib.get_close_matches(module_name, _modules_in(folders), n=1, cutoff=0.6)
        problem = f"cannot import '{module_name}' for arch '{arch}': no such module in {searched} or the installed packages"
        if close:
            raise ModelError(f"{problem}; did you mean '{close[0]}:{arch.rpartition(':')[2]}'?") from None
        raise ModelError(problem, hint=f"put {module_name.replace('.', '/')}.py in one of those folders, or install "
                         "the package that holds it") from None
    except Exception as err:  # the user's module raised while importing: say where, without a traceback
        hint = f"fix {module_name}; `python -c 'import {module_name}'` in its folder shows the traceback"
        raise _import_failed(module_name, arch, err, folders, hint) from None


def _import_failed(module_name: str, arch: str, err: BaseException, folders: list[Path], hint: str) -> ModelError:
    where = _user_line(err, folders)
    return ModelError(f"importing '{module_name}' for arch '{arch}' failed{where}: {first_line(err)}", hint=hint)


def _user_line(err: BaseException, folders: list[Path]) -> str:
    """`` (at mymodels.py:3)``: the last line of the user's own code (under ``folders``) the error passed, if any."""
    if isinstance(err, SyntaxError) and err.filename:
        return f" (at {Path(err.filename).name}:{err.lineno})"
    frames = [frame for frame in traceback.extract_tb(err.__traceback__)
              if any(Path(frame.filename).is_relative_to(folder) for folder in folders)]
    return f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""


def _modules_in(folders: list[Path]) -> list[str]:
    """Module and package names in ``folders`` (for "did you mean" on a misspelt module)."""
    names = []
    for folder in folders:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        names += [entry.stem for entry in entries if entry.suffix == ".py" or (entry / "__init__.py").is_file()]
    return sorted(set(names))


def architecture_problem(arch: str) -> str | None:
    """What is wrong with a torchvision architecture name (None: fine, or a factory, which only
    ``robustgate validate`` imports). ``mymodels.build`` (a factory written with a dot) gets its colon form."""
    if is_factory(arch):
        return None
    prefix, _, name = arch.rpartition(":")
    if prefix == TIMM:
        return timm_problem(name)
    available = torchvision_architectures()
    if name in available:
        return None
    module, _, function = name.rpartition(".")
    if module:  # `mymodels.build`: a factory written with a dot for the colon
        tv = module.split(".")[0] == TORCHVISION and function in available  # `torchvision.models.resnet18`
        return (f"'{name}' is neither a torchvision architecture nor a factory: a factory is written module:function; "
                f"did you mean '{f'{TORCHVISION}:{function}' if tv else f'{module}:{function}'}'?")
    return f"unknown torchvision architecture '{name}'; {did_you_mean(name, available)}"


def arch_json_schema(schema: dict[str, Any]) -> None:
    """What the JSON Schema of specs says of an ``arch:`` value: a torchvision classifier (bare or
    ``torchvision:``-prefixed, so editors complete them) or a ``module:function`` factory."""
    names = torchvision_architectures()
    schema["anyOf"] = [
        {"enum": [*names, *(f"{TORCHVISION}:{name}" for name in names)]},
        {"pattern": rf"^{TIMM}:[A-Za-z0-9_]+$", "description": "a timm model (pip install 'robustgate[timm]')"},
        {"pattern": rf"^(?!{TORCHVISION}:)[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$",
         "description": "a factory, module:function, whose module is importable from the spec's folder or the rootdir"},
    ]


def timm_problem(name: str) -> str | None:
    """What is wrong with ``timm:NAME`` here: timm not installed, or no such model (None: fine)."""
    if importlib.util.find_spec(TIMM) is None:
        return f"arch 'timm:{name}' needs timm, which is not installed here: pip install 'robustgate[timm]'"
    available = timm_architectures()
    if not available or name in available:  # names unreadable from its files: timm.create_model will say
        return None
    return f"unknown timm architecture '{name}'; {did_you_mean(name, available)}"


@functools.lru_cache(maxsize=1)
def timm_architectures() -> list[str]:
    """The models timm registers (``@register_model`` builders in timm/models/*.py), read from its files: importing
    timm takes seconds, and a spec names one model."""
    return sorted(set(_scan_model_files(TIMM, lambda text: _TIMM_REGISTERED.findall(text))))


@functools.lru_cache(maxsize=1)
def torchvision_architectures() -> list[str]:
    """The classifiers ``torchvision.models.list_models(module=torchvision.models)`` lists, read from the
    ``@register_model()`` builders in torchvision/models/*.py rather than by importing torchvision (seconds);
    torchvision's own list where it is imported already or its files do not read as expected."""
    if "torchvision.models" not in sys.modules:
        scanned = sorted(_scan_model_files(TORCHVISION, _torchvision_registered))
        if scanned:
            return scanned
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _torchvision_registered(text: str) -> list[str]:
    names = []
    for registered in _REGISTERED.finditer(text):
        builder = _DEF.search(text, registered.end())
        if builder is not None:
            names.append(registered.group(1) or builder.group(1))
    return names


def _scan_model_files(package: str, registered: Callable[[str], list[str]]) -> list[str]:
    """The names ``registered`` finds in ``package``/models/*.py, found without importing the package; [] where a
    file does not read."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    names = []
    for source in sorted((Path(spec.submodule_search_locations[0]) / "models").glob("*.py")):
        try:
            names += registered(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return []
    return names

"""Building an untrained network from `arch:`: any torchvision classifier by name, a timm model, or a user factory."""

from __future__ import annotations

import hashlib
import inspect
import sys
from pathlib import Path
from typing import Any

from torch import nn

from robustgate.errors import ModelError
from robustgate.provenance import MODEL_CODE
from robustgate.spec.factories import TIMM, architecture_problem, import_factory, timm_problem


def build_network(arch: str, kwargs: dict[str, Any]) -> nn.Module:
    """``torchvision:NAME`` (or a bare torchvision name) via ``torchvision.models.get_model``,
    or ``package.module:callable`` returning an ``nn.Module``."""
    prefix, _, name = arch.rpartition(":")
    if prefix in ("", "torchvision"):
        return _torchvision(name, kwargs)
    if prefix == TIMM:
        return _timm(name, kwargs)
    return _factory(arch, kwargs)


def _timm(name: str, kwargs: dict[str, Any]) -> nn.Module:
    problem = timm_problem(name)
    if problem:
        raise ModelError(problem, hint="use a name from timm.list_models(), e.g. timm:mobilenetv3_small_100")
    import timm

    try:
        # pretrained=False: nothing is downloaded; trained or pretrained weights come from the spec's `weights:`.
        return timm.create_model(name, pretrained=False, **kwargs)
    except TypeError as err:
        raise ModelError(f"timm:{name} does not accept kwargs {kwargs}: {err}") from None


def _torchvision(name: str, kwargs: dict[str, Any]) -> nn.Module:
    problem = architecture_problem(name)
    if problem:
        raise ModelError(
            problem, hint="use a classification model name from torchvision.models.list_models(), or 'mypkg.module:factory'"
        )
    import torchvision

    try:
        # weights=None: nothing is downloaded; pretrained weights come from the spec's `weights:`.
        return torchvision.models.get_model(name, weights=None, **kwargs)
    except TypeError as err:
        raise ModelError(f"torchvision:{name} does not accept kwargs {kwargs}: {err}") from None


def _factory(arch: str, kwargs: dict[str, Any]) -> nn.Module:
    factory = import_factory(arch, [])  # the import and its messages are validate's and collection's
    try:
        net = factory(**kwargs)
    except TypeError as err:
        raise ModelError(f"{arch}{inspect.signature(factory)} rejected kwargs {kwargs}: {err}") from None
    if not isinstance(net, nn.Module):
        raise ModelError(f"{arch} returned {type(net).__name__}, not a torch.nn.Module")
    return net


def structure_digest(net: nn.Module) -> str:
    """Hash of a network's repr and of its state's names, shapes and dtypes."""
    digest = hashlib.sha256()
    digest.update(repr(net).encode())
    for name, tensor in net.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
    return digest.hexdigest()


def model_code(net: nn.Module, arch: str) -> dict[str, str]:
    """SHA-256 of the source of every non-torch module defining ``net`` or its factory, by file:
    ``{"model code (mypkg/models.py)": ...}``, a named cache-key component, so a rebuild says which file changed.

    torch and torchvision classes are covered by their versions (part of every cache key), timm's by its version
    (a component here); for user
    classes and factories the whole file is hashed, so editing ``forward`` or the factory (even a comment)
    invalidates cached weights and predictions, and the run says why.
    """
    modules = {type(m).__module__ for m in net.modules()}
    prefix, _, _ = arch.rpartition(":")
    if prefix not in ("", "torchvision", TIMM):
        modules.add(prefix)
    found = {}
    if any(m.split(".")[0] == TIMM for m in modules):  # a library's classes: its version stands for its code
        import timm

        found["timm"] = timm.__version__
    for module_name in sorted(m for m in modules if m.split(".")[0] not in ("torch", "torchvision", TIMM)):
        label, source = _module_source(module_name)
        found[f"{MODEL_CODE} ({label})"] = hashlib.sha256(source).hexdigest()
    return found


def _module_source(module_name: str) -> tuple[str, bytes]:
    """A label for the module's file (``mypkg/models.py``) and its bytes; the module name and b"" without one."""
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if path is None:
        return module_name, b""
    parts = module_name.split(".")
    label = "/".join([*parts[:-1], Path(path).name] if Path(path).name != "__init__.py" else [*parts, "__init__.py"])
    try:
        return label, Path(path).read_bytes()
    except OSError:
        return label, b""

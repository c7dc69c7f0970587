"""Building an untrained network from `arch:`: any torchvision classifier by name, or a user factory."""

from __future__ import annotations

import hashlib
import inspect
import sys
from pathlib import Path
from typing import Any

from torch import nn

from robustgate.errors import ModelError
from robustgate.spec.factories import architecture_problem, import_factory


def build_network(arch: str, kwargs: dict[str, Any]) -> nn.Module:
    """``torchvision:NAME`` (or a bare torchvision name) via ``torchvision.models.get_model``,
    or ``package.module:callable`` returning an ``nn.Module``."""
    prefix, _, name = arch.rpartition(":")
    if prefix in ("", "torchvision"):
        return _torchvision(name, kwargs)
    return _factory(arch, kwargs)


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


def network_digest(net: nn.Module, arch: str) -> str:
    """Hash of a network's structure and of the code that defines it.

    torch and torchvision classes are covered by their versions (part of every
    cache key); for user classes and factories the source of their modules is
    hashed, so editing ``forward`` or the factory invalidates cached weights and
    predictions.
    """
    digest = hashlib.sha256()
    digest.update(repr(net).encode())
    for name, tensor in net.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
    modules = {type(m).__module__ for m in net.modules()}
    prefix, _, _ = arch.rpartition(":")
    if prefix not in ("", "torchvision"):
        modules.add(prefix)
    for module_name in sorted(m for m in modules if m.split(".")[0] not in ("torch", "torchvision")):
        digest.update(module_name.encode())
        digest.update(_module_source(module_name))
    return digest.hexdigest()


def _module_source(module_name: str) -> bytes:
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if path is None:
        return b""
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""

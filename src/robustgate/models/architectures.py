"""Building an untrained network from `arch:`: any torchvision classifier by name, or a user factory."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torchvision
from torch import nn

from robustgate.errors import ModelError
from robustgate.registry import did_you_mean


def build_network(arch: str, kwargs: dict[str, Any]) -> nn.Module:
    """``torchvision:NAME`` (or a bare torchvision name) via ``torchvision.models.get_model``,
    or ``package.module:callable`` returning an ``nn.Module``."""
    prefix, _, name = arch.rpartition(":")
    if prefix in ("", "torchvision"):
        return _torchvision(name, kwargs)
    return _factory(prefix, name, kwargs, arch)


def _torchvision(name: str, kwargs: dict[str, Any]) -> nn.Module:
    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        raise ModelError(
            f"unknown torchvision architecture '{name}'; {did_you_mean(name, available)}",
            hint="use a classification model name from torchvision.models.list_models(), or 'mypkg.module:factory'",
        )
    try:
        # weights=None: nothing is downloaded; pretrained weights come from the spec's `weights:`.
        return torchvision.models.get_model(name, weights=None, **kwargs)
    except TypeError as err:
        raise ModelError(f"torchvision:{name} does not accept kwargs {kwargs}: {err}") from None


def _factory(module_name: str, attr: str, kwargs: dict[str, Any], arch: str) -> nn.Module:
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelError(
            f"cannot import '{module_name}' for arch '{arch}': {err}",
            hint="make the module importable (install your package, or run pytest from the folder that holds it)",
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise ModelError(f"'{module_name}' has no callable '{attr}'; {did_you_mean(attr, names)}")
    try:
        net = factory(**kwargs)
    except TypeError as err:
        signature = inspect.signature(factory) if callable(factory) else ""
        raise ModelError(f"{arch}{signature} rejected kwargs {kwargs}: {err}") from None
    if not isinstance(net, nn.Module):
        raise ModelError(f"{arch} returned {type(net).__name__}, not a torch.nn.Module")
    return net

"""Loading tensors into a network without losing the version marks some layers need.

``state_dict()`` carries each module's ``version`` in a ``_metadata`` attribute, and a few modules
refuse a state without it (torchvision's MNASNet raises "version should be set to 1 or 2 instead
of None"). Any dict built by hand, filtered by a comprehension, or read from a format that keeps
tensors only has none. A state that fits the network as built now is in that network's format,
so its own marks are the right ones to supply.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # compression steps import this module when specs are read
    import torch
    from torch import nn


def load_state(net: nn.Module, state: Mapping[str, Any], *, strict: bool = True) -> Any:
    """``net.load_state_dict(state, strict=strict)``, with ``net``'s own version marks where ``state`` has none."""
    if getattr(state, "_metadata", None) is None:
        marked: OrderedDict[str, torch.Tensor] = OrderedDict(state)
        marked._metadata = getattr(net.state_dict(), "_metadata", OrderedDict())  # type: ignore[attr-defined]
        state = marked
    return net.load_state_dict(state, strict=strict)


def without_prefix(state: Mapping[str, Any], prefix: str) -> OrderedDict[str, Any]:
    """``state`` with ``prefix`` taken off its keys and off its version marks (e.g. DataParallel's ``module.``)."""
    stripped: OrderedDict[str, Any] = OrderedDict((k.removeprefix(prefix), v) for k, v in state.items())
    metadata = getattr(state, "_metadata", None)
    if metadata is not None:
        whole = prefix.rstrip(".")
        stripped._metadata = OrderedDict(  # type: ignore[attr-defined]
            ("" if k == whole else k.removeprefix(prefix), v) for k, v in metadata.items()
        )
    return stripped


def without_keys(state: Mapping[str, Any], drop: set[str] | frozenset[str]) -> OrderedDict[str, Any]:
    """``state`` less the keys in ``drop``, keeping its version marks."""
    kept: OrderedDict[str, Any] = OrderedDict((k, v) for k, v in state.items() if k not in drop)
    if getattr(state, "_metadata", None) is not None:
        kept._metadata = state._metadata  # type: ignore[attr-defined]
    return kept

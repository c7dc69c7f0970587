"""Loading a user's checkpoint into the network built from the spec, with errors that say what doesn't fit."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustgate.errors import ModelError
from robustgate.models.state import load_state, without_prefix


def load_checkpoint(net: nn.Module, path: Path, *, trusted: bool, arch: str) -> None:
    """Load a state_dict (or a ``{"state_dict": ...}`` / ``{"model": ...}`` wrapper) into ``net``.

    ``weights_only=True`` unless the spec says ``trusted: true``: a pickle can run code.
    """
    if not path.is_file():
        raise ModelError(
            f"weights file '{path}' does not exist",
            hint="give the path of a state_dict saved with torch.save(model.state_dict(), PATH), "
            "relative to the spec file, or use weights: train",
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=not trusted)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = (
            "if the file holds a whole pickled model rather than a state_dict and you trust it, add `trusted: true` under model:"
            if not trusted
            else "re-save it with torch.save(model.state_dict(), PATH)"
        )
        raise ModelError(f"cannot read checkpoint '{path}': {first}", hint=hint) from None
    state = _state_dict_of(loaded, path)
    state = without_prefix(state, "module.")  # saved from DataParallel
    problems = _mismatches(net, state)
    if problems:
        raise ModelError(
            f"checkpoint '{path.name}' does not fit {arch}: " + "; ".join(problems[:4])
            + (f"; and {len(problems) - 4} more" if len(problems) > 4 else ""),
            hint="check `arch:` and `kwargs:` (e.g. num_classes) against the model the checkpoint was saved from",
        )
    load_state(net, state)


def _state_dict_of(loaded: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, nn.Module):
        return loaded.state_dict()
    if isinstance(loaded, dict):
        for wrapper in ("state_dict", "model_state_dict", "model"):
            inner = loaded.get(wrapper)
            if isinstance(inner, dict):
                loaded = inner
                break
            if isinstance(inner, nn.Module):
                return inner.state_dict()
        if all(isinstance(v, torch.Tensor) for v in loaded.values()):
            return loaded
    raise ModelError(f"'{path}' holds a {type(loaded).__name__}, not a state_dict of tensors")


def _mismatches(net: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    expected = net.state_dict()
    problems = []
    for name, tensor in expected.items():
        if name not in state:
            problems.append(f"'{name}' is missing from the checkpoint")
        elif tuple(state[name].shape) != tuple(tensor.shape):
            problems.append(
                f"'{name}' has shape {list(state[name].shape)} in the checkpoint but {list(tensor.shape)} in the model"
            )
    problems += [f"unexpected key '{name}' in the checkpoint" for name in state if name not in expected]
    return problems

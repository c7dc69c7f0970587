"""Loading a user's checkpoint into the network built from the spec, with errors that say what doesn't fit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustgate.checkpoints import SAVE_HINT as RESAVE, checkpoint_problem
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
    problem = checkpoint_problem(path)  # a cut, empty or foreign file, told from its header before torch reads it
    if problem:
        raise ModelError(problem)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as err:  # torch raises many kinds for a bad file; each becomes one message
        raise unreadable(path, err, trusted) from None
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


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def unreadable(path: Path, err: Exception, trusted: bool) -> ModelError:
    """What is wrong with a checkpoint whose header looked right but torch.load refused: a pickled object
    (without ``trusted: true``), or a file damaged inside."""
    text = _ANSI.sub("", str(err)).strip()  # torch's weights_only message carries terminal colour codes
    pickled = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if pickled and not trusted:
        return ModelError(
            f"'{path}' holds a pickled {pickled.group(1)} (a whole model or training object, not only tensors), and "
            "unpickling it can run code from the file",
            hint=f"{RESAVE.replace('save it again', 're-save the weights alone')}; or, if you trust the file, add "
            "`trusted: true` under model:",
        )
    first = text.splitlines()[0][:200] if text else type(err).__name__
    return ModelError(f"weights file '{path}' ({path.stat().st_size} bytes) is truncated or corrupted ({first})",
                      hint=f"copy it again, or {RESAVE}")


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
        nested = [key for key, value in loaded.items() if isinstance(value, dict) and value
                  and all(isinstance(v, torch.Tensor) for v in value.values())]
        keys = ", ".join(f"{key!r} ({_kind_of(value)})" for key, value in list(loaded.items())[:8])
        where = (f"re-save the weights under {nested[0]!r} alone: "
                 f"torch.save(torch.load(PATH, weights_only=True)[{nested[0]!r}], NEW_PATH), and give NEW_PATH as weights:"
                 ) if nested else RESAVE
        raise ModelError(f"'{path}' holds a dict with keys {keys}{', ...' if len(loaded) > 8 else ''}, "
                         "not a state_dict of tensors", hint=where)
    raise ModelError(f"'{path}' holds a {type(loaded).__name__}, not a state_dict of tensors", hint=RESAVE)


def _kind_of(value: Any) -> str:
    if isinstance(value, dict) and value and all(isinstance(v, torch.Tensor) for v in value.values()):
        return f"a state_dict of {len(value)} tensors"
    return f"a tensor {list(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__


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

"""torchvision's ImageNet weights, offline: ``weights: imagenet`` (the architecture's default weights) or a
weights enum name (``IMAGENET1K_V1``, ``ResNet18_Weights.IMAGENET1K_V1``).

They are read from torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``, as torchvision itself
would cache them) and never downloaded during a run; ``robustgate fetch-weights ARCH`` downloads them
explicitly, checking the SHA-256 prefix torchvision puts in every file name.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from robustgate.checkpoints import IMAGENET, PRETRAINED_ENTRY
from robustgate.errors import ModelError
from robustgate.models.state import load_state, without_keys
from robustgate.models.weights import unreadable

_HASH = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's rule: the hash prefix sits between the last '-' and the suffix


def resolve(arch: str, weights: str) -> torchvision.models.WeightsEnum:
    """The torchvision weights entry ``weights:`` names for ``arch`` (a bare or ``torchvision:`` name)."""
    name = arch.removeprefix("torchvision:")
    if ":" in name:
        raise ModelError(f"weights: {weights} names torchvision weights, but arch '{arch}' is not a torchvision model",
                         hint="give your own model's weights as a file path")
    try:
        enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError):
        raise ModelError(f"torchvision has no pretrained weights for '{name}'") from None
    match = PRETRAINED_ENTRY.fullmatch(weights)
    if weights == IMAGENET or (match and match.group(2) == "DEFAULT" and match.group(1) in (None, enum.__name__)):
        return enum.DEFAULT
    assert match is not None
    members = [member.name for member in enum]
    if match.group(1) not in (None, enum.__name__) or match.group(2) not in members:
        raise ModelError(f"'{weights}' is not a weights entry of {name}; it has: {', '.join(enum.__name__ + '.' + m for m in members)}")
    return enum[match.group(2)]


def checkpoint_path(entry: torchvision.models.WeightsEnum) -> Path:
    """Where torch hub keeps ``entry``'s file (``$TORCH_HOME/hub/checkpoints/NAME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(entry.url).path)


def load_pretrained(net: nn.Module, arch: str, weights: str) -> list[str]:
    """Load the weights into ``net``, keeping ``net``'s own classifier head where its class count differs
    from ImageNet's 1000; returns the names of the head's tensors left freshly initialised."""
    entry = resolve(arch, weights)
    path = checkpoint_path(entry)
    if not path.is_file():
        raise ModelError(
            f"{type(entry).__name__}.{entry.name} for {arch} is not on this machine: expected {path} "
            "(robustgate never downloads during a run)",
            hint=f"run `robustgate fetch-weights {arch.removeprefix('torchvision:')}` where there is network, or copy "
            f"the file there (TORCH_HOME moves the folder)",
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a cut download, most often: one message, never torch's traceback
        problem = unreadable(path, err, trusted=True)
        problem.hint = f"delete it and fetch it again (robustgate fetch-weights {arch.removeprefix('torchvision:')})"
        raise problem from None
    own = net.state_dict()
    head = [key for key, tensor in state.items() if key in own and own[key].shape != tensor.shape]
    unknown = [key for key in state if key not in own]
    missing = [key for key in own if key not in state]
    if unknown or missing or len(head) > 2:  # a head is one weight and one bias
        raise ModelError(f"{path.name} does not fit {arch} with the spec's kwargs: "
                         f"{len(unknown)} unexpected and {len(missing)} missing tensors, {len(head)} of another shape")
    load_state(net, without_keys(state, set(head)), strict=False)
    return head


def fetch(arch: str, weights: str = IMAGENET, mirror: str | None = None) -> Path:
    """Download ``arch``'s weights into torch hub's checkpoint folder (from ``mirror``, a URL folder holding
    the same file name, when given), checking the SHA-256 prefix in the file name; returns the path."""
    entry = resolve(arch, weights)
    target = checkpoint_path(entry)
    url = entry.url if mirror is None else mirror.rstrip("/") + "/" + target.name
    prefix = _HASH.search(target.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        partial = Path(scratch) / target.name
        try:
            torch.hub.download_url_to_file(url, str(partial), hash_prefix=prefix.group(1) if prefix else None, progress=False)
        except RuntimeError as err:  # torch.hub's hash mismatch
            raise ModelError(f"{url} is not {target.name}: {err}", hint="fetch it from torchvision's URL or a faithful mirror") from None
        except OSError as err:
            raise ModelError(f"cannot download {url}: {err}") from None
        shutil.move(partial, target)  # only a verified file reaches the folder runs read
    return target

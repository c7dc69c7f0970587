"""What a ``weights:`` value names, and whether a weights file can be a PyTorch checkpoint, told from its
first bytes and its zip directory: without torch and without reading the tensors, so reading a spec and
`robustgate validate` check them in a moment.

``torch.save`` writes a zip archive (``PK\\x03\\x04``) holding ``<name>/data.pkl`` and the tensors; zip
readers find the members through the central directory at the end of the file, so a file cut short
(an interrupted copy or download) has none and fails here at once. Checkpoints written before torch 1.6
(``_use_new_zipfile_serialization=False``) are a pickle stream, opening with the protocol marker ``\\x80``.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

IMAGENET = "imagenet"
# torchvision's entries: IMAGENET1K_V1, IMAGENET1K_SWAG_E2E_V1, DEFAULT; optionally qualified, ResNet18_Weights.DEFAULT
PRETRAINED_ENTRY = re.compile(r"(?:(\w+_Weights)\.)?(IMAGENET[A-Z0-9_]*|DEFAULT)")
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL = 0x80
SAVE_HINT = "save it again with torch.save(model.state_dict(), PATH)"


def is_pretrained(weights: str) -> bool:
    """Whether ``weights:`` names torchvision weights (rather than a file or ``train``)."""
    return weights == IMAGENET or bool(PRETRAINED_ENTRY.fullmatch(weights))


def checkpoint_problem(path: Path, written: str | None = None) -> str | None:
    """Why ``path`` cannot be a checkpoint torch.load reads (None: it can be, as far as a header read tells);
    the message names the file as ``written`` in the spec, where given."""
    shown = f"weights file '{written or path}'"
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            head = file.read(16)
    except IsADirectoryError:
        return f"{shown} is a folder; give the file a state_dict was saved to"
    except OSError as err:
        return f"cannot read {shown}: {err.strerror or err}"
    if size == 0:
        return f"{shown} is empty (0 bytes): truncated or not a PyTorch checkpoint; {SAVE_HINT}"
    if head.startswith(ZIP_MAGIC):
        return _zip_problem(path, shown, size)
    if head[0] == PICKLE_PROTOCOL and len(head) > 1 and 2 <= head[1] <= 5:
        return None  # the legacy format: a pickle stream, only readable whole
    return (f"{shown} is truncated or not a PyTorch checkpoint (it starts with {head[:8]!r}, neither a zip archive "
            f"nor a pickle); {SAVE_HINT}")


def _zip_problem(path: Path, shown: str, size: int) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return f"{shown} is truncated or not a PyTorch checkpoint (a zip archive of {size} bytes without its end); {SAVE_HINT}"
    if not any(member.filename == "data.pkl" or member.filename.endswith("/data.pkl") for member in members):
        return f"{shown} is a zip archive but not a PyTorch checkpoint (it holds no data.pkl); {SAVE_HINT}"
    past_end = [m.filename for m in members if m.header_offset + m.compress_size > size]
    if past_end:
        return f"{shown} is truncated ({past_end[0]} ends past the end of the file); {SAVE_HINT}"
    return None

"""Office-31, the domain-shift benchmark the robustgate study fine-tunes and evaluates on.

Office-31 (Saenko et al., "Adapting Visual Category Models to New Domains",
ECCV 2010) holds the same 31 office-object classes photographed in three
domains: product shots from amazon.com, DSLR photos and webcam photos. It is
not redistributable by robustgate; users download it and point a spec at it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from robustgate.data.imagefolder import PATH_HINT, check_folder, decode_samples, scan_samples
from robustgate.data.imageset import ImageSet
from robustgate.errors import DataError

OFFICE31_DOMAINS = ("amazon", "dslr", "webcam")
# The class folder names of the standard release, sorted; a label is an index into this tuple in every domain.
OFFICE31_CLASSES: tuple[str, ...] = (
    "back_pack", "bike", "bike_helmet", "bookcase", "bottle", "calculator", "desk_chair", "desk_lamp",
    "desktop_computer", "file_cabinet", "headphones", "keyboard", "laptop_computer", "letter_tray",
    "mobile_phone", "monitor", "mouse", "mug", "paper_notebook", "pen", "phone", "printer", "projector",
    "punchers", "ring_binder", "ruler", "scissors", "speaker", "stapler", "tape_dispenser", "trash_can",
)  # fmt: skip

OFFICE31_HINT = (
    "Office-31 (Saenko et al. 2010, 'Adapting Visual Category Models to New Domains') is not shipped with "
    "robustgate: download it yourself and unpack it in its standard layout, "
    "<root>/{amazon,dslr,webcam}/images/<class>/*.jpg with the 31 class folders, "
    "then point the spec at <root> (for example office31: ${OFFICE31_ROOT}, with OFFICE31_ROOT set to it)"
)


def load_office31(root: Path, domain: str, size: tuple[int, int], channels: int = 3) -> ImageSet:
    """One Office-31 domain from ``<root>/<domain>/images/<class>/*.jpg`` as an :class:`ImageSet`.

    Labels index :data:`OFFICE31_CLASSES` whatever is on disk, so they mean the
    same class in every domain; all 31 classes must be present.
    """
    images_dir = office31_images(root, domain)
    class_to_idx = {name: i for i, name in enumerate(OFFICE31_CLASSES)}
    samples = scan_samples(images_dir, class_to_idx)
    return decode_samples(samples, OFFICE31_CLASSES, size, channels)


def office31_images(root: Path, domain: str) -> Path:
    """``<root>/<domain>/images`` once it holds the 31 class folders, else a :class:`DataError` saying what is missing
    (cheap: folders are listed, images are not read)."""
    if domain not in OFFICE31_DOMAINS:
        raise DataError(
            f"unknown Office-31 domain {domain!r}; the domains are {', '.join(OFFICE31_DOMAINS)}",
            hint="use one of " + ", ".join(OFFICE31_DOMAINS) + " (lower case, as the folders are named)",
        )
    root = check_folder(root, what="Office-31 folder", hint=f"{PATH_HINT}. {OFFICE31_HINT}")
    domain_dir = root / domain
    if not domain_dir.is_dir():
        present = [name for name in OFFICE31_DOMAINS if (root / name).is_dir()]
        found = f" (it has: {', '.join(present)})" if present else ""
        raise DataError(
            f"Office-31 domain folder '{domain_dir}' does not exist{found}",
            hint=f"point the spec at the folder that holds amazon/, dslr/ and webcam/. {OFFICE31_HINT}",
        )
    images_dir = domain_dir / "images"
    if not images_dir.is_dir():
        raise DataError(
            f"Office-31 folder '{images_dir}' does not exist",
            hint=f"each domain keeps its class folders under an images/ folder. {OFFICE31_HINT}",
        )
    _check_classes(images_dir)
    return images_dir


def _check_classes(images_dir: Path) -> None:
    """A :class:`DataError` naming the Office-31 classes missing from, and the unexpected folders in, ``images_dir``."""
    try:
        # Hidden folders (.ipynb_checkpoints and the like) are not classes; labels come from the fixed list, so
        # skipping them cannot shift any label.
        on_disk = {e.name for e in os.scandir(images_dir) if e.is_dir() and not e.name.startswith(".")}
    except OSError as err:
        raise DataError(f"cannot read Office-31 folder '{images_dir}': {err.strerror or err}", hint=PATH_HINT) from None
    missing = [name for name in OFFICE31_CLASSES if name not in on_disk]
    extra = sorted(on_disk.difference(OFFICE31_CLASSES))
    if not missing and not extra:
        return
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} of Office-31's {len(OFFICE31_CLASSES)} classes {'is' if len(missing) == 1 else 'are'} "
            f"missing under '{images_dir}': "
            + ", ".join(missing)
        )
    if extra:
        problems.append(f"'{images_dir}' has folders that are not Office-31 classes: " + ", ".join(extra))
    guesses = [
        f"{name} -> {match[0]}"
        for name in extra
        if (match := difflib.get_close_matches(name.lower(), missing, n=1, cutoff=0.75))
    ]
    hint = "the class folders must be named exactly as in the standard release"
    if guesses:
        hint += " (rename " + ", ".join(guesses) + ")"
    hint += f". {OFFICE31_HINT}"
    raise DataError("; ".join(problems), hint=hint)

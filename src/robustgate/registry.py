"""One registry shape for every pluggable thing: dataset kinds, corruptions,
compression steps and contract kinds (architectures come from torchvision's own
registry or a user factory).

A new kind is one registered function or class instance in one file::

    corruptions = Registry("corruption")

    @corruptions.register("gaussian_noise")
    def gaussian_noise(images, severity, generator): ...
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from robustgate.errors import RegistryError

T = TypeVar("T")


def did_you_mean(name: object, choices: list[str]) -> str:
    """A ``did you mean 'x'?`` suffix for the closest choice, or the list of choices."""
    # YAML may hand over a number or null where a name was meant (`5:` as a key); compare its text.
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "expected one of: " + ", ".join(sorted(choices))


class Registry(Generic[T]):
    """Named entries of one kind, with duplicate checks and "did you mean" on misses."""

    def __init__(self, kind: str, base: type | None = None) -> None:
        self.kind = kind
        self.base = base  # entries must be instances of it (None: any callable)
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise RegistryError(f"{self.kind} '{name}' is registered twice")
            wrong = not isinstance(entry, self.base) if self.base is not None else not callable(entry)
            if wrong:
                expected = self.base.__name__ if self.base is not None else "a callable"
                raise RegistryError(f"{self.kind} '{name}' must be {expected}, not {type(entry).__name__}")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} '{name}': {did_you_mean(name, self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def registered(self) -> list[str]:
        """The names in the order they were registered (the order their package imports them), for reports."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

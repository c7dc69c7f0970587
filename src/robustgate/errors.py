"""The one exception family robustgate raises for user-facing problems.

Every error a user can cause (a bad spec, missing data, a checkpoint that does
not fit) is a ``RobustgateError``; the pytest plugin prints its message as is,
without a traceback from inside torch.
"""

from __future__ import annotations


class RobustgateError(Exception):
    """A problem the user can fix; ``str(err)`` is the whole message they see.

    ``where`` is the spec location (``file:line``) the problem traces back to,
    when known; layers that know the location attach it with :meth:`at`.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(message)

    def at(self, where: str) -> "RobustgateError":
        """Attach a spec location unless a more precise one is already there."""
        if self.where is None:
            self.where = where
        return self

    def one_line(self) -> str:
        """The message and its fix on one line, without the location: ``problem; fix``."""
        return f"{self.message}; {self.hint}" if self.hint else self.message

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text


class SpecError(RobustgateError):
    """A spec file that cannot be read or does not validate."""


class DataError(RobustgateError):
    """A dataset that is missing, malformed, or does not fit the model."""


class ModelError(RobustgateError):
    """A model that cannot be built, loaded, or produces unusable outputs."""


class CompressionError(RobustgateError):
    """A compression step that cannot be applied to the model it was given."""


class RegistryError(RobustgateError):
    """An unknown or duplicate name in one of robustgate's registries."""


def first_line(err: BaseException) -> str:
    """``Type: first line of the message`` of a library exception, for one-line error reports."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__

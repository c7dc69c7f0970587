"""A contract evaluating images its model was fitted on measures memory: it fails unless the spec says so.

For every dataset a contract evaluates, the images also found (byte for byte) in a set the model was
trained, fine-tuned, distilled or calibrated on (:class:`robustgate.data.overlap.FittedImages`) are
counted. Any such image makes the gate ``seen_in_training@DATASET <= 0`` fail, with a finding naming
the set; ``seen_in_training: intended`` on the contract turns both into a note.
"""

from __future__ import annotations

from robustgate.checks.outcome import Gate, Outcome


def add_seen_in_training(
    outcome: Outcome, dataset: str, size: int, count: int, seen: list[tuple[str, str, int]], intended: bool
) -> None:
    """``count`` of the ``size`` images of ``dataset`` were fitted on; ``seen``: (fitted dataset, what it
    fitted, how many of them it holds)."""
    if not count:
        return
    where = "; ".join(f"{n} of them in {name} ({role})" for name, role, n in seen)
    what = f"{count} of the {size} images of {dataset} are ones the {outcome.variant} model was fitted on: {where}"
    if intended:
        outcome.notes.append(f"{what} (seen_in_training: intended)")
        return
    outcome.gates.append(Gate(f"seen_in_training@{dataset}", "<=", 0, count, count, "exact"))
    outcome.findings.append(
        f"{what}; accuracy on them measures memory, not generalisation. Evaluate on held-out images, or add "
        "seen_in_training: intended to the contract if that is the point"
    )

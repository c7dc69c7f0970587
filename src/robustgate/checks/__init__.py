"""Contract kinds (one registered class per file); they compute outcomes and know nothing of pytest."""

from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.outcome import Gate, Outcome
from robustgate.checks import accuracy as _accuracy  # noqa: F401  (registers `accuracy`)
from robustgate.checks import size as _size  # noqa: F401  (registers `size`)
from robustgate.checks import attack as _attack  # noqa: F401  (registers `attack`)
from robustgate.checks import corruptions as _corruptions  # noqa: F401  (registers `corruptions`)
from robustgate.checks import shift as _shift  # noqa: F401  (registers `shift`)
from robustgate.checks import latency as _latency  # noqa: F401  (registers `latency`)

__all__ = ["ContractKind", "Evaluation", "Gate", "Outcome", "contract_kinds"]

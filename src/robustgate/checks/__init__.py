"""Contract kinds (one registered class per file); they compute outcomes and know nothing of pytest."""

from robustgate.checks.base import ContractKind, Evaluation, contract_kinds, metric_direction
from robustgate.checks.outcome import Gate, Outcome
# Registration order is the order of the report's sections: what a reader asks first comes first.
from robustgate.checks import accuracy as _accuracy  # noqa: F401  (registers `accuracy`)
from robustgate.checks import shift as _shift  # noqa: F401  (registers `shift`)
from robustgate.checks import corruptions as _corruptions  # noqa: F401  (registers `corruptions`)
from robustgate.checks import attack as _attack  # noqa: F401  (registers `attack`)
from robustgate.checks import calibration as _calibration  # noqa: F401  (registers `calibration`)
from robustgate.checks import compare as _compare  # noqa: F401  (registers `compare`)
from robustgate.checks import latency as _latency  # noqa: F401  (registers `latency`)
from robustgate.checks import size as _size  # noqa: F401  (registers `size`)

__all__ = ["ContractKind", "Evaluation", "Gate", "Outcome", "contract_kinds", "metric_direction"]

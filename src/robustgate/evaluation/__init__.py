"""What contracts measure, one concern per module: models, predictions, attacks, latency, composed by
:class:`SpecEvaluation` (see :mod:`robustgate.evaluation.spec_evaluation`)."""

from robustgate.evaluation.spec_evaluation import SpecEvaluation

__all__ = ["SpecEvaluation"]

"""Compression steps (one registered class per file) and the pipeline that chains and caches them."""

from robustgate.compressors.base import CompressionStep, StepContext, compression_steps
from robustgate.compressors import ptq as _ptq  # noqa: F401  (registers `ptq`)
from robustgate.compressors import prune as _prune  # noqa: F401  (registers `prune`)
from robustgate.compressors import distill as _distill  # noqa: F401  (registers `distill`)
from robustgate.compressors import artifact as _artifact  # noqa: F401  (registers `artifact`)
from robustgate.compressors import export as _export  # noqa: F401  (registers `export`)

__all__ = ["CompressionStep", "StepContext", "compression_steps"]

"""Spec files: YAML with line marks, validated into frozen, typed objects."""

from robustgate.spec.model import Contract, DatasetEntry, Spec, Step, Variant
from robustgate.spec.parse import is_spec_file, load_cases, load_spec

__all__ = ["Contract", "DatasetEntry", "Spec", "Step", "Variant", "is_spec_file", "load_cases", "load_spec"]

"""Which (model, contract) pairs a spec asks for: the items pytest collects and `validate` counts."""

from __future__ import annotations

from robustgate.checks import contract_kinds
from robustgate.spec import Contract, Spec
from robustgate.spec.model import BASELINE


def models(spec: Spec) -> tuple[str, ...]:
    """The baseline, then the variants in the order written."""
    return (BASELINE, *spec.variants)


def applies(contract: Contract, model: str) -> bool:
    """Whether ``contract`` is checked on ``model``.

    An explicit ``variants:`` list decides; otherwise every variant, and the baseline
    when the contract has a gate that means something for it.
    """
    if contract.variants is not None:
        return model in contract.variants
    return model != BASELINE or contract_kinds.get(contract.kind).applies_to_baseline(contract.params)


def planned_pairs(spec: Spec) -> list[tuple[str, Contract]]:
    return [(model, contract) for model in models(spec) for contract in spec.contracts if applies(contract, model)]

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

    A kind that says which models its items belong to decides (a comparison of two models is one item,
    under one of them); else an explicit ``variants:`` list; otherwise every variant, and the baseline
    when the contract has a gate that means something for it.
    """
    kind = contract_kinds.get(contract.kind)
    fixed = kind.models_for(contract.params)
    if fixed is not None:
        return model in fixed
    if contract.variants is not None:
        return model in contract.variants
    return model != BASELINE or kind.applies_to_baseline(contract.params)


def missing_data(spec: Spec) -> str | None:
    """Why a spec's items are skipped: datasets marked ``missing: skip`` that are not on this machine
    (one message for the lot, grouped by what is wrong), or None when they are all there."""
    from robustgate.data.kinds import dataset_kinds

    problems: dict[str, list[str]] = {}
    for name, entry in spec.datasets.items():
        if getattr(entry.params, "missing", "fail") == "skip":
            why = dataset_kinds.get(entry.kind).unavailable(entry.params, spec.directory)
            if why:
                problems.setdefault(why, []).append(name)
    if not problems:
        return None
    return " | ".join(f"dataset{'s' if len(names) > 1 else ''} {', '.join(names)} not on this machine "
                      f"(missing: skip): {why}" for why, names in problems.items())


def missing_runtime(spec: Spec, model: str) -> str | None:
    """Why ``model`` cannot be built on this machine: a step of its variant needs a runtime that is not installed
    (``artifact: model.onnx`` without ONNX Runtime). None for the baseline and for steps PyTorch runs."""
    from robustgate.compressors import compression_steps

    variant = spec.variants.get(model)
    for step in variant.steps if variant is not None else ():
        why = compression_steps.get(step.kind).missing_runtime(step.params)
        if why is not None:
            return f"variant {model} ({step.kind}) needs {why}"
    return None


def planned_pairs(spec: Spec) -> list[tuple[str, Contract]]:
    return [(model, contract) for model in models(spec) for contract in spec.contracts if applies(contract, model)]

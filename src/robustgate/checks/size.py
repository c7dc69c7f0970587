"""``size:`` contracts: serialized bytes, parameters and MACs, absolute or relative to the baseline."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, model_validator

from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.outcome import Gate, Outcome
from robustgate.spec.fields import Params, gated_elsewhere

BYTES_PER_MB = 1_000_000  # SI megabytes, as file sizes are usually quoted


class SizeParams(Params):
    max_mb: float | None = Field(None, gt=0)  # serialized state, in MB (10^6 bytes)
    max_ratio: float | None = Field(None, gt=0)  # serialized bytes relative to the baseline's
    max_params: int | None = Field(None, ge=1)
    max_macs: int | None = Field(None, ge=1)  # multiply-accumulates per image at the spec's input size

    @model_validator(mode="after")
    def _some_gate(self, info: ValidationInfo) -> "SizeParams":
        gates = (self.max_mb, self.max_ratio, self.max_params, self.max_macs)
        if all(value is None for value in gates) and not gated_elsewhere(info):
            raise ValueError("a size contract needs a gate: max_mb, max_ratio, max_params or max_macs")
        return self


class SizeContract(ContractKind):
    """Sizes are counted, not sampled: every gate reads the exact value."""

    gate_keys = frozenset({"max_mb", "max_ratio", "max_params", "max_macs"})

    Params = SizeParams

    def applies_to_baseline(self, params: SizeParams) -> bool:
        return any(value is not None for value in (params.max_mb, params.max_params, params.max_macs))

    def check(self, evaluation: Evaluation, variant: str, params: SizeParams) -> Outcome:
        size = evaluation.size_metrics(variant)
        outcome = Outcome(contract="size", variant=variant)
        outcome.metrics.update(size, mb=size["bytes"] / BYTES_PER_MB)
        limits = (
            ("mb", params.max_mb, outcome.metrics["mb"]),
            ("size_ratio", params.max_ratio, size["size_ratio"]),
            ("params", params.max_params, size["params"]),
            ("macs", params.max_macs, size["macs"]),
        )
        for metric, limit, value in limits:
            if limit is not None:
                outcome.gates.append(Gate(metric, "<=", limit, value, value, "exact"))
        return outcome


contract_kinds.register("size")(SizeContract())

"""``size:`` contracts: serialized bytes, parameters and MACs, absolute or relative to the baseline."""

from __future__ import annotations

from pydantic import Field

from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.declaration import GateDecl, MetricDecl, reading
from robustgate.checks.outcome import Outcome
from robustgate.errors import RobustgateError
from robustgate.spec.model import BASELINE
from robustgate.spec.fields import Params

BYTES_PER_MB = 1_000_000  # SI megabytes, as file sizes are usually quoted


class SizeParams(Params):
    max_mb: float | None = Field(None, gt=0)  # serialized state, in MB (10^6 bytes)
    max_ratio: float | None = Field(None, gt=0)  # serialized bytes relative to the baseline's
    max_params: int | None = Field(None, ge=1)
    max_macs: int | None = Field(None, ge=1)  # multiply-accumulates per image at the spec's input size


class SizeContract(ContractKind):
    """Sizes are counted, not sampled: every gate reads the exact value."""

    Params = SizeParams
    gates = (
        GateDecl("max_mb", "mb", "<=", "exact"),
        GateDecl("max_ratio", "size_ratio", "<=", "exact", relative=True),
        GateDecl("max_params", "params", "<=", "exact"),
        GateDecl("max_macs", "macs", "<=", "exact"),
    )
    metrics = (
        MetricDecl("bytes", False), MetricDecl("mb", False), MetricDecl("params", False), MetricDecl("macs", False),
        MetricDecl("size_ratio", False), MetricDecl("params_ratio", False), MetricDecl("macs_ratio", False),
    )
    needs = frozenset({"models"})
    title = "Size"
    summary = "serialized megabytes, parameters and multiply-accumulates, absolute or as a share of the baseline's."

    def check(self, evaluation: Evaluation, variant: str, params: SizeParams) -> Outcome:
        size = evaluation.models.size_metrics(variant)
        outcome = Outcome(contract="size", variant=variant)
        outcome.metrics.update(size, mb=size["bytes"] / BYTES_PER_MB)
        read = reading(evaluation.confidence)
        for gate in self.set_gates(params):
            if gate.relative and variant == BASELINE:  # the baseline is 1.0 of itself: max_ratio is for its variants
                continue
            if gate.metric not in outcome.metrics:  # params/MACs of an artifact whose graph hides its layers
                raise RobustgateError(
                    f"size: {gate.key} cannot be judged for '{variant}': its {gate.metric} cannot be counted (an artifact "
                    "without autograd, such as an int8 TorchScript or torch.export graph, hides its layers from the counters)",
                    hint="gate its bytes on disk with max_mb or max_ratio instead",
                )
            value = outcome.metrics[gate.metric]
            outcome.gates.append(gate.judge(getattr(params, gate.key), value, value, value, read))
        return outcome


contract_kinds.register("size")(SizeContract())

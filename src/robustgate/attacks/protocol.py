"""Robust accuracy that means something for every variant, int8 included.

Differentiable models (and attacks that need no gradients) are attacked directly. A model with
no autograd (an int8 model) cannot be attacked white-box, and attacking the fp32 model instead
says nothing about the int8 one. For those, an image counts as robust only if it survives every
leg of the protocol, each scored on the real int8 model:

- twin: the white-box attack run on a differentiable fake-quant twin of the int8 model, in
  lockstep with it (the int8 model's values forward, straight-through gradients backward), trusted
  only on at least ``min_twin_agreement`` of the clean images: the share on which the twin, given
  the int8 model's own input to each layer, reproduces 99% of every layer's int8 codes to within
  one step (``twin_fidelity``);
- transfer: the white-box attack run on the fp32 parent (the variant before quantization);
- gradient-free: the Square attack (forward passes only) run on the int8 model itself.

The protocol fails closed: a leg that cannot run (no twin, a twin that disagrees, no parent)
raises :class:`IncompleteProtocol`, naming the leg and why, unless the contract accepts going
without it (``accept_missing: [twin]``); an accepted gap is carried on the result, so the report
can say the number rests on fewer legs.

A model that has autograd but whose input gradients are None, NaN or mostly zero (a rounding
or other masking layer) is attacked directly and also by the gradient-free attack. So is every
differentiable model when ``symmetric`` is asked for: a drop of an int8 model (attacked by three
legs) against its fp32 baseline (by one) then compares worst cases over like attacks.

Which attack broke each image first is recorded, in the order clean, white-box, twin,
transfer, gradient-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from robustgate.attacks.base import AttackSettings, attack_kinds
from robustgate.errors import RobustgateError, first_line

if TYPE_CHECKING:  # attack contracts read this module's constants when specs are read; torch is imported to attack
    from collections.abc import Mapping

    import torch
    from torch import nn

    from robustgate.attacks.run import Reuse

    from robustgate.models.classifier import Classifier

METHODS = ("robust", "clean", "white-box", "twin", "transfer", "gradient-free")
"""Codes of ``RobustResult.found_by``: index 0 means the image withstood everything."""

LEGS = ("twin", "transfer", "gradient-free")
"""The legs of the protocol for a model without autograd; ``accept_missing`` names them."""

MIN_TWIN_AGREEMENT = 0.99
"""Below this share of clean images reproduced layer by layer (``twin_fidelity``), a twin's gradients are not the int8 model's."""


class IncompleteProtocol(RobustgateError):
    """A leg of the attack protocol cannot run, and the contract does not accept going without it."""


@dataclass(frozen=True)
class Policy:
    """What a contract accepts: legs it may go without, and the agreement a twin needs to count."""

    accept_missing: frozenset[str] = frozenset()
    min_twin_agreement: float = MIN_TWIN_AGREEMENT

    def gaps(self, unavailable: dict[str, str], twin_agreement: float | None) -> dict[str, str]:
        """The legs that do not count in full, and why; raises :class:`IncompleteProtocol` for any the
        contract does not accept. Read from facts a cached result keeps, so a stricter policy on a
        warm cache fails as a cold run would."""
        gaps = dict(unavailable)
        if twin_agreement is not None and twin_agreement < self.min_twin_agreement and "twin" not in gaps:
            gaps["twin"] = (
                f"the twin reproduces the int8 model's layers on only {twin_agreement:.1%} of the clean images "
                f"(min_twin_agreement: {self.min_twin_agreement:g}), so its gradients are not the int8 model's"
                f"{saturation_note()}"
            )
        refused = {leg: why for leg, why in gaps.items() if leg not in self.accept_missing}
        if refused:
            raise incomplete(refused)
        return gaps


@dataclass(frozen=True)
class RobustResult:
    correct: torch.Tensor  # bool per image: right on the clean image and after every attack
    found_by: torch.Tensor  # uint8 per image: index into METHODS of the first attack that broke it
    twin_agreement: float | None = None  # share of clean images whose every int8 layer the twin reproduces
    unavailable: dict[str, str] = field(default_factory=dict)  # legs that could not run at all, and why
    # int16 per image: the first white-box (or twin) PGD iterate the attacked model got wrong, -1: none (None: not PGD)
    first_fooled: torch.Tensor | None = None
    seconds: float = 0.0  # what the attack cost when it ran (the diagnostics report theirs against it)
    gaps: dict[str, str] = field(default_factory=dict)  # legs that did not count in full, as the contract accepted
    legs: tuple[str, ...] = ()  # the attacks that ran, in order (METHODS names); () when nothing was attacked

    def counts(self) -> dict[str, int]:
        return {method: int((self.found_by == code).sum()) for code, method in enumerate(METHODS) if code}


@dataclass(frozen=True)
class Legs:
    """The attacks a model's robust accuracy is the worst case of: (method, attacked model) pairs."""

    rounds: list[tuple[str, nn.Module]]
    twin_agreement: float | None = None
    unavailable: dict[str, str] = field(default_factory=dict)


def robust_correct(
    kind: str,
    settings: AttackSettings,
    model: nn.Module,
    parent: nn.Module | None,
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    queries: int,
    *,
    differentiable: bool | None = None,
    policy: Policy = Policy(),
    symmetric: bool = False,
    reuse: Mapping[str, Reuse] | None = None,
) -> RobustResult:
    """Per image: is ``model`` right on it after every leg of the protocol?

    ``differentiable``: whether ``model`` has autograd (None: find out with one forward pass); ``parent``: the differentiable model a
    non-differentiable ``model`` was quantized from (None: there is none). Raises
    :class:`IncompleteProtocol` before attacking when a leg cannot run and ``policy`` does not accept it.
    ``reuse``: per leg (``white-box``, ``transfer``), where the adversarial images of the model that leg attacks are
    kept (:func:`robustgate.attacks.run.leg_correct`): the transfer leg of every variant of one fp32 parent, and that
    parent's own white-box attack, are one attack."""
    import torch

    from robustgate.attacks.run import leg_correct, predictions

    found = torch.zeros(len(labels), dtype=torch.uint8)
    clean = predictions(model, images)
    correct = clean == labels
    found[~correct] = METHODS.index("clean")
    if settings.strength == 0:  # no perturbation at all (and L2 PGD divides by zero on it)
        return RobustResult(correct, found)
    if differentiable is None:
        differentiable = has_autograd(model, images[:1])
    legs = plan_legs(kind, model, parent, images, labels, differentiable, symmetric)
    policy.gaps(legs.unavailable, legs.twin_agreement)
    free = AttackSettings(settings.strength, settings.norm, queries, None, 1)
    trace: list[torch.Tensor] = []
    for method, attacker in legs.rounds:
        recorded = trace if method in ("white-box", "twin") else None
        if method == "gradient-free":
            survived = leg_correct("square", free, attacker, model, images, labels, seed)
        else:
            kept = (reuse or {}).get(method)
            survived = leg_correct(kind, settings, attacker, model, images, labels, seed, recorded, kept)
        found[correct & ~survived] = METHODS.index(method)
        correct &= survived
    first_fooled = torch.cat(trace) if trace else None
    ran = tuple(method for method, _ in legs.rounds)
    return RobustResult(correct, found, legs.twin_agreement, legs.unavailable, first_fooled, legs=ran)


def describe_legs(legs: tuple[str, ...], kind: str, queries: int) -> str:
    """``twin pgd, transfer pgd from the fp32 parent, gradient-free square (200 queries)``: what a robust
    accuracy is the worst case of, as a reader compares two models' numbers."""
    shown = {
        "white-box": f"white-box {kind}",
        "twin": f"{kind} on the fake-quant twin",
        "transfer": f"{kind} transferred from the fp32 parent",
        "gradient-free": f"gradient-free square ({queries} queries)",
    }
    return ", ".join(shown.get(leg, leg) for leg in legs) or "no attack (strength 0)"


def plan_legs(
    kind: str,
    model: nn.Module,
    parent: nn.Module | None,
    images: torch.Tensor,
    labels: torch.Tensor,
    differentiable: bool,
    symmetric: bool = False,
) -> Legs:
    """Which attacks run against ``model``, and which legs of the protocol cannot run, and why.
    ``symmetric``: a differentiable model gets the gradient-free leg too, as a model without autograd does."""
    from robustgate.attacks.gradients import gradient_problem
    from robustgate.compressors.int8.lockstep import twin_fidelity
    from robustgate.compressors.int8.twin import NoTwin

    if not attack_kinds.get(kind).needs_gradients:
        return Legs([("white-box", model)])
    rounds: list[tuple[str, nn.Module]] = []
    if differentiable:
        rounds.append(("white-box", model))
        if symmetric or gradient_problem(model, images, labels) is not None:  # white-box is blind here
            rounds.append(("gradient-free", model))
        return Legs(rounds)
    unavailable: dict[str, str] = {}
    agreement = None
    try:
        twin = fake_quant_twin(model, images[:2])
    except NoTwin as err:
        unavailable["twin"] = err.message
    else:  # a twin below the agreement bar still breaks what it can: it runs, the policy judges it
        agreement = float(twin_fidelity(twin, images).float().mean())
        rounds.append(("twin", twin))
    if parent is None:
        unavailable["transfer"] = "the model has no differentiable parent (an fp32 model it was quantized from) to attack"
    else:
        rounds.append(("transfer", parent))
    rounds.append(("gradient-free", model))
    return Legs(rounds, agreement, unavailable)


def saturation_note() -> str:
    """Why a twin may fail to follow an int8 model on this machine, where that is the likely reason."""
    from robustgate.provenance import int8_sums_saturate

    if not int8_sums_saturate():
        return ""
    return (
        "; this x86 CPU has no VNNI, and its int8 kernels add pairs of 8-bit products in 16 bits, which saturate on "
        "large codes (7-bit weights or activations avoid it: ptq's reduce_range, torch's x86 engine)"
    )


def has_autograd(model: nn.Module, example: torch.Tensor) -> bool:
    """Whether ``model``'s output depends differentiably on its input (int8 kernels' does not)."""
    import torch

    with torch.enable_grad():
        return bool(model(example.clone().requires_grad_(True)).requires_grad)


def gradient_reaches_input(model: nn.Module, example: torch.Tensor) -> bool:
    """Whether ``model`` has autograd and its input gradient is finite and somewhere nonzero, on seeded images of
    ``example``'s shape (the example may be blank). A graph whose quantize ops are computed by float ops (a PT2E int8
    program run as saved) carries a gradient that its rounding makes zero everywhere: a white-box attack on it would
    take that for robustness, so such a model is attacked as one without autograd."""
    import torch

    images = torch.rand(example.shape, generator=torch.Generator().manual_seed(0)).to(example.device).requires_grad_(True)
    with torch.enable_grad():
        out = model(images)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:  # no autograd at all (int8 kernels)
            return False
        (gradient,) = torch.autograd.grad(out.float().logsumexp(1).sum(), images, allow_unused=True)
    return gradient is not None and bool(torch.isfinite(gradient).all()) and bool((gradient != 0).any())


def incomplete(refused: dict[str, str]) -> IncompleteProtocol:
    legs = " and ".join(refused)
    why = "; ".join(f"{leg}: {reason}" for leg, reason in refused.items())
    return IncompleteProtocol(
        f"the attack protocol for a model without autograd cannot run its {legs} leg{'s' if len(refused) > 1 else ''} "
        f"({why}), so its robust accuracy would rest on the other legs alone and overstate robustness",
        hint=f"make the missing leg possible, or accept the weaker protocol with accept_missing: [{', '.join(refused)}] on this "
        "contract (the report then says so in the item's headline)",
    )


def fake_quant_twin(model: nn.Module, example: torch.Tensor) -> Classifier:
    """The differentiable twin of an int8 Classifier; raises :class:`NoTwin` saying why there is none.

    ``example``: a batch of the model's [0, 1] inputs, on which the twin must run and differentiate."""
    import torch

    from robustgate.compressors.int8.engine import Int8Net
    from robustgate.compressors.int8.twin import NoTwin, twin_problem
    from robustgate.models.classifier import Classifier

    net = getattr(model, "net", None)
    # robustgate's int8 networks, and networks that can mirror themselves (an ONNX model, a .pte robustgate lowered, a
    # PT2E torch.export artifact)
    mirrored = isinstance(net, Int8Net) or callable(getattr(net, "twin", None))
    if not isinstance(model, Classifier) or net is None or not mirrored:
        shown = type(net if net is not None else model).__name__
        raise NoTwin(
            "robustgate builds fake-quant twins of its own int8 networks, of ONNX graphs, of PT2E torch.export programs "
            f"and of the ExecuTorch programs it lowers only, not of a {shown}"
        )
    with torch.no_grad():
        normalized = model.normalize(example)
    try:
        twin = model.with_net(net.twin(normalized)).eval()
    except NoTwin:
        raise
    except Exception as err:  # tracing or copying the int8 graph failed: a reason, not a traceback
        raise NoTwin(f"building the fake-quant twin failed: {first_line(err)}") from None
    problem = twin_problem(twin, example)
    if problem is not None:
        raise NoTwin(f"the fake-quant twin cannot drive a white-box attack: {problem}")
    return twin

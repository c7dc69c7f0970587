"""Attack contracts' measurements: per-image robustness under the int8 protocol, and gradient-masking checks.

Both are cached by model, images, attack settings and seed; the int8 protocol itself (twin, transfer,
gradient-free legs) lives in :mod:`robustgate.attacks.protocol`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from robustgate.attacks.base import AttackSettings, attack_kinds
from robustgate.attacks.diagnostics import masking_findings
from robustgate.attacks.protocol import Policy, RobustResult, fake_quant_twin, robust_correct
from robustgate.attacks.run import Reuse
from robustgate.attacks.strength import format_strength
from robustgate.budget import count_images
from robustgate.cache import ArtifactCache
from robustgate.compressors.int8.twin import NoTwin
from robustgate.compressors.pipeline import BuiltModel
from robustgate.data.imageset import ImageSet
from robustgate.errors import RobustgateError
from robustgate.evaluation.models import ModelStore
from robustgate.evaluation.predictions import Predictions
from robustgate.models.classifier import Classifier
from robustgate.phases import PhaseClock
from robustgate.provenance import ArtifactKey, artifact_key, environment
from robustgate.spec.model import Spec


ADVERSARIAL_BYTES = 512 * 2**20  # adversarial image sets kept in memory for the next variant, oldest dropped first


class AttackEvaluation:
    """Attacks one spec's models on the images its attack contracts name (``params`` is an attack contract's)."""

    def __init__(
        self, spec: Spec, cache: ArtifactCache, clock: PhaseClock, models: ModelStore, predictions: Predictions,
        progress: Callable[[str], None],
    ) -> None:
        self.spec, self.cache, self.clock, self.models, self.predictions = spec, cache, clock, models, predictions
        self.progress = progress
        self._robust: dict[tuple[str, str, float], RobustResult] = {}
        self._adversarial: dict[str, dict[str, Any]] = {}  # adversarial images by key digest, oldest first

    def robust(self, variant: str, params: Any, strength: float) -> RobustResult:
        """Per-image robustness of ``variant`` under an attack contract at one strength (cached).

        Raises :class:`IncompleteProtocol` when a leg of the int8 protocol cannot run and the contract
        does not accept its absence; the result's ``gaps`` name the absences it accepted."""
        memo = (variant, params.model_dump_json(), strength)
        count_images(len(self.predictions.sampled(params.on, params.samples)),
                     f"{variant} under {params.kind} at {format_strength(strength)} on '{params.on}'")
        if memo in self._robust:
            return self._robust[memo]
        built, parent, data = self._inputs(variant, params)
        settings = AttackSettings(strength, params.norm, params.steps, params.step_size, params.restarts)
        key = self._key("attacks", ("attack", strength), built, parent, data, params)
        policy = Policy(frozenset(params.accept_missing), params.min_twin_agreement)
        symmetric = _symmetric(built, params)

        def run() -> dict[str, Any]:
            indirect = not built.differentiable and attack_kinds.get(params.kind).needs_gradients
            # said before the legs run: whether a twin can be built is known only then (the item reports which ran)
            how = ("through a fake-quant twin where one can be built, transfer from its fp32 parent and a gradient-free "
                   "attack") if indirect else "directly"
            how += " and by a gradient-free attack (symmetric)" if symmetric else ""
            self.progress(
                f"attacking {variant} with {params.kind} at {format_strength(strength)} on '{params.on}' "
                f"({len(data)} images) {how}"
            )
            model, _ = self.models.evaluation_copy(variant, built)
            fp32 = self.models.evaluation_copy(f"{variant} (parent)", parent)[0] if parent else None
            started = time.perf_counter()
            reuse = {"transfer": self._adversaries(parent, data, params, strength)} if parent else {}
            if built.differentiable and self.models.is_transfer_parent(variant):  # its images serve a transfer leg
                reuse["white-box"] = self._adversaries(built, data, params, strength)
            with self.clock.phase("attack"):
                result = robust_correct(
                    params.kind, settings, model, fp32, data.floats(), data.labels, self.spec.seed, params.queries,
                    differentiable=built.differentiable, policy=policy, symmetric=symmetric, reuse=reuse,
                )
            return {
                "correct": result.correct, "found_by": result.found_by, "legs": list(result.legs),
                "twin_agreement": torch.tensor([] if result.twin_agreement is None else [result.twin_agreement]),
                "unavailable": dict(result.unavailable),
                "first_fooled": torch.tensor([], dtype=torch.int16) if result.first_fooled is None else result.first_fooled,
                "seconds": torch.tensor([time.perf_counter() - started]),
            }

        stored = self.cache.get_or_create("attacks", key, run)
        agreement, first_fooled = stored["twin_agreement"], stored["first_fooled"]
        result = RobustResult(
            stored["correct"], stored["found_by"], float(agreement[0]) if len(agreement) else None,
            dict(stored["unavailable"]), first_fooled if len(first_fooled) else None, float(stored["seconds"][0]),
            legs=tuple(stored["legs"]),
        )
        # Judged on every read, cached or not: a stricter contract on a warm cache fails as a cold run would.
        self._robust[memo] = result = replace(result, gaps=policy.gaps(result.unavailable, result.twin_agreement))
        return result

    def masking_findings(self, variant: str, params: Any) -> list[str]:
        """Signs of a too-weak evaluation (gradient masking) at the contract's largest strength (cached)."""
        strength = max(params.strengths)
        result = self.robust(variant, params, strength)
        built, parent, data = self._inputs(variant, params)
        thorough = params.diagnostics == "thorough"
        key = self._key("masking", ("masking", strength, thorough), built, parent, data, params)

        def run() -> dict[str, list[str]]:
            checks = "thorough" if thorough else "default"
            self.progress(f"checking {variant} for gradient masking under {params.kind} on '{params.on}' ({checks} checks)")
            model, _ = self.models.evaluation_copy(variant, built)
            attacker: Classifier | None = model
            if not built.differentiable:
                try:
                    attacker = fake_quant_twin(model, data.floats()[:2])
                except NoTwin:  # accepted by the contract (robust() refuses otherwise); the finding says so
                    attacker = None
            settings = AttackSettings(strength, params.norm, params.steps, params.step_size, params.restarts)
            started = time.perf_counter()
            with self.clock.phase("attack"):
                findings = masking_findings(
                    params.kind, settings, attacker, model, data.floats(), data.labels, result,
                    len(data.classes), self.spec.seed, params.queries, thorough,
                )
            seconds = time.perf_counter() - started
            self.progress(
                f"gradient-masking checks ({checks}) on {variant} took {seconds:.1f} s, "
                f"{seconds / max(result.seconds, 1e-9):.1f}x the attack's {result.seconds:.1f} s"
            )
            return {"findings": findings}

        return list(self.cache.get_or_create("masking", key, run)["findings"])

    def _adversaries(self, attacked: BuiltModel, data: ImageSet, params: Any, strength: float) -> Reuse:
        """Where the adversarial images of a white-box attack on the differentiable model ``attacked`` are kept: in
        the cache (kind ``adversarial``) and, for this session, in memory while they fit :data:`ADVERSARIAL_BYTES`.
        Keyed by what decides them (model, images, kind, strength, norm, steps, step size, seed; not the restarts,
        which attack per scorer), so a variant's transfer leg reads its parent's white-box attack, made once."""
        attack = params.model_dump(include={"kind", "norm", "steps", "step_size"})
        key = artifact_key(
            ("adversarial", strength, data.fingerprint(), attack, self.spec.seed), environment("adversarial"),
            {"model": attacked.key},
        )

        def reuse(make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            kept = self._adversarial
            if key.digest not in kept:
                kept[key.digest] = self.cache.get_or_create("adversarial", key, make)
                while len(kept) > 1 and sum(k["images"].numel() * k["images"].element_size() for k in kept.values()) > ADVERSARIAL_BYTES:
                    kept.pop(next(iter(kept)))
            return kept[key.digest]

        return reuse

    def _inputs(self, variant: str, params: Any) -> tuple[BuiltModel, BuiltModel | None, ImageSet]:
        """The model, its differentiable parent when it has no gradients itself, and the images to attack."""
        built = self.models.model(variant)
        try:
            self.models.check_fits(params.on, self.predictions.datasets[params.on], built.model)
        except RobustgateError as err:
            raise err.at(self.spec.where(self.spec.datasets[params.on].line)) from None
        data = self.predictions.sampled(params.on, params.samples)  # the images images_id() names for paired comparisons
        parent = None if built.differentiable else self.models.differentiable_parent(variant)
        return built, parent, data

    def _key(
        self, kind: str, what: tuple, built: BuiltModel, parent: BuiltModel | None, data: ImageSet, params: Any,
    ) -> ArtifactKey:
        """An attack's or masking check's key (the protocol's code enters through the attacks code digest)."""
        attack = params.model_dump(include={"kind", "norm", "steps", "step_size", "restarts", "queries"})
        if _symmetric(built, params):  # an int8 model's legs are the same either way: its results are reused
            attack["symmetric"] = True
        return artifact_key(
            (*what, data.fingerprint(), attack, self.spec.seed),
            environment(kind),
            {"model": built.key, "fp32 parent": parent.key if parent else None},
        )


def _symmetric(built: BuiltModel, params: Any) -> bool:
    """Whether this attack adds the gradient-free leg to a model that has autograd (``symmetric: true``)."""
    return bool(params.symmetric) and built.differentiable and attack_kinds.get(params.kind).needs_gradients

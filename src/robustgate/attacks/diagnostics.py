"""Signs that an attack was too weak to trust, after Athalye et al. (2018) and Carlini et al.'s
"On Evaluating Adversarial Robustness" (2019): each finding says why a robust accuracy may
be an overestimate.

Checked on the model the white-box attack ran on (the model itself, or an int8 model's twin),
scored on the model under test, and only on the images the attack left standing (an image it
broke needs no second look), so the checks cost a fraction of the attack. The default set
reuses the attack's own results wherever it can:

- input gradients that are None, NaN or zero (one backward pass on 32 images);
- a single FGSM step breaking images the iterative attack left standing;
- transfer or gradient-free legs breaking images the white-box attack left standing (read off
  the protocol's per-image results); for a differentiable model, a short Square attack instead;
- accuracy far above chance at a large eps (an unbounded attack should reach chance), from a
  5-step PGD there;
- PGD still misclassifying new images in its last fifth of steps, at least a tenth of all it fooled
  (read off the attack's own iterates: it had not converged).

``thorough`` runs the costlier forms instead: Square with the contract's full query budget,
the large-eps attack with the contract's kind and steps, and the attack again with five times
the steps (which also covers kinds whose iterates are not recorded: APGD, CW).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from robustgate.attacks.base import AttackSettings, Perturb, attack_kinds
from robustgate.attacks.gradients import gradient_problem
from robustgate.attacks.protocol import METHODS, RobustResult
from robustgate.attacks.run import attacked_correct
from robustgate.attacks.strength import format_strength

LARGE_LINF = 64 / 255  # a quarter of the pixel range: any honest attack reaches chance well before
CHEAP_SQUARE_QUERIES = 20  # the default set's gradient-free probe of a differentiable model
CHEAP_LARGE_STEPS = 5  # PGD steps at the large eps in the default set
LATE_SHARE = 0.2  # the last fifth of the iterates: images still falling there mean no convergence
LATE_SHARE_OF_FOOLED = 0.1  # ... when they are at least this share of all the images the attack fooled


def masking_findings(
    kind: str,
    settings: AttackSettings,
    attacker: nn.Module | None,
    scorer: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    result: RobustResult,
    num_classes: int,
    seed: int,
    queries: int,
    thorough: bool = False,
) -> list[str]:
    attack = attack_kinds.get(kind)
    if not attack.needs_gradients or settings.strength == 0:
        return []  # noise and query attacks do not depend on gradients; eps 0 attacks nothing
    if attacker is None:
        return ["no differentiable twin of this model: the white-box attack could not run, so robust accuracy "
                "rests on transfer and gradient-free attacks alone"]
    problem = gradient_problem(attacker, images, labels)
    findings = [problem] if problem else []
    standing = result.correct.nonzero().flatten()
    x, y = images[standing], labels[standing]
    enough = max(2, round(0.02 * len(labels)))  # more than noise: 2% of the images, at least 2
    steps = settings.steps or attack.default_steps
    name = f"{kind}-{steps}" if steps else kind

    def survivors(perturb: Perturb, on: nn.Module = attacker) -> int:
        return int(attacked_correct(perturb, on, scorer, x, y, seed).sum()) if len(standing) else 0

    if kind != "fgsm" and settings.norm == "Linf":
        found = len(standing) - survivors(attack_kinds.get("fgsm").build(attacker, settings, seed))
        if found >= enough:
            findings.append(f"a single FGSM step breaks {found} images that {name} left standing: the iterative attack is not following the gradient")
    others = int(sum((result.found_by == METHODS.index(m)).sum() for m in ("transfer", "gradient-free")))
    if others >= enough:
        findings.append(f"transfer and gradient-free attacks break {others} images the white-box attack left standing")
    elif attacker is scorer:  # a differentiable model: ask a gradient-free attack as well
        budget = queries if thorough else min(queries, CHEAP_SQUARE_QUERIES)
        square = attack_kinds.get("square").build(scorer, AttackSettings(settings.strength, settings.norm, budget, None, 1), seed)
        found = len(standing) - survivors(square, on=scorer)
        if found >= enough:
            findings.append(f"a gradient-free Square attack ({budget} queries) breaks {found} images that {name} left standing")
    findings += _large_eps(kind, settings, attacker, survivors, len(labels), num_classes, seed, thorough)
    findings += _convergence(kind, settings, attacker, result, steps, name, enough, survivors, len(standing), seed, thorough)
    return findings


Survivors = Callable[[Perturb], int]
"""How many of the images the attack left standing still stand after ``perturb``."""


def _large_eps(
    kind: str, settings: AttackSettings, attacker: nn.Module, survivors: Survivors, n: int, num_classes: int, seed: int, thorough: bool
) -> list[str]:
    large = LARGE_LINF if settings.norm == "Linf" else 8 * settings.strength
    if large <= settings.strength:
        return []
    if thorough:
        strong = attack_kinds.get(kind).build(attacker, replace(settings, strength=large, step_size=None), seed)
    else:
        strong = attack_kinds.get("pgd").build(attacker, AttackSettings(large, settings.norm, CHEAP_LARGE_STEPS, None, 1), seed)
    left = survivors(strong) / n  # an image broken at eps counts as broken at the larger eps
    chance = 1 / num_classes
    if left <= chance + 0.1:
        return []
    return [f"at eps {format_strength(large)} {kind if thorough else 'pgd'} still leaves accuracy {left:.3f} "
            f"(chance is {chance:.3f}): gradients may be masked"]


def _convergence(
    kind: str, settings: AttackSettings, attacker: nn.Module, result: RobustResult, steps: int | None, name: str, enough: int,
    survivors: Survivors, standing: int, seed: int, thorough: bool,
) -> list[str]:
    if thorough and steps:
        more = 5 * steps
        found = standing - survivors(attack_kinds.get(kind).build(attacker, replace(settings, steps=more), seed))
        return [f"{more} steps break {found} images that {name} left standing: the attack had not converged"] if found >= enough else []
    if result.first_fooled is None or not steps:
        return []
    late_from = steps - max(1, round(LATE_SHARE * steps))
    late = int((result.first_fooled >= late_from).sum())
    fooled = int((result.first_fooled >= 0).sum())
    # A converged attack breaks few images at the end: calibrated against five times the steps on a CNN on
    # the digits (eps 1/255 to 16/255, 5 to 20 steps), this flagged every setting where those broke 7 or more.
    if late < enough or late < LATE_SHARE_OF_FOOLED * fooled:
        return []
    return [f"{late} images first fell in the last {steps - late_from} of {name}'s {steps} steps: the attack was still "
            "making progress (had not converged); more steps may break more (diagnostics: thorough measures it)"]

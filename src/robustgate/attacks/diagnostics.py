"""Signs that an attack was too weak to trust, after Athalye et al. (2018) and Carlini et al.'s
"On Evaluating Adversarial Robustness" (2019): each finding says why a robust accuracy may
be an overestimate.

Checked on the model the white-box attack ran on (the model itself, or an int8 model's twin),
scored on the model under test:

- input gradients that are None, NaN or zero;
- a single FGSM step breaking images the iterative attack left standing;
- transfer or gradient-free attacks breaking images the white-box attack left standing;
- accuracy far above chance at a large eps (an unbounded attack should reach chance);
- five times more steps breaking more images (the attack had not converged).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from robustgate.attacks.base import AttackSettings, attack_kinds
from robustgate.attacks.gradients import gradient_problem
from robustgate.attacks.protocol import METHODS, RobustResult
from robustgate.attacks.run import attacked_correct
from robustgate.attacks.strength import format_strength

LARGE_LINF = 64 / 255  # a quarter of the pixel range: any honest attack reaches chance well before


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
) -> list[str]:
    attack = attack_kinds.get(kind)
    if not attack.needs_gradients or settings.strength == 0:
        return []  # noise and query attacks do not depend on gradients; eps 0 attacks nothing
    if attacker is None:
        return ["no differentiable twin of this model: the white-box attack could not run, so robust accuracy "
                "rests on transfer and gradient-free attacks alone"]
    problem = gradient_problem(attacker, images, labels)
    findings = [problem] if problem else []
    standing = result.correct
    enough = max(2, round(0.02 * len(labels)))  # more than noise: 2% of the images, at least 2

    def breaks(perturb, on: nn.Module = attacker) -> int:
        return int((standing & ~attacked_correct(perturb, on, scorer, images, labels, seed)).sum())

    name = f"{kind}-{settings.steps or attack.default_steps}" if attack.default_steps else kind
    if kind != "fgsm" and settings.norm == "Linf":
        found = breaks(attack_kinds.get("fgsm").build(attacker, settings, seed))
        if found >= enough:
            findings.append(f"a single FGSM step breaks {found} images that {name} left standing: the iterative attack is not following the gradient")
    others = int(sum((result.found_by == METHODS.index(m)).sum() for m in ("transfer", "gradient-free")))
    if others >= enough:
        findings.append(f"transfer and gradient-free attacks break {others} images the white-box attack left standing")
    elif attacker is scorer:  # a differentiable model: ask a gradient-free attack as well
        square = AttackSettings(settings.strength, settings.norm, queries, None, 1)
        found = breaks(attack_kinds.get("square").build(scorer, square, seed), on=scorer)
        if found >= enough:
            findings.append(f"a gradient-free Square attack breaks {found} images that {name} left standing")
    large = LARGE_LINF if settings.norm == "Linf" else 8 * settings.strength
    if large > settings.strength:
        strong = replace(settings, strength=large, step_size=None)
        left = float(attacked_correct(attack.build(attacker, strong, seed), attacker, scorer, images, labels, seed).float().mean())
        chance = 1 / num_classes
        if left > chance + 0.1:
            findings.append(
                f"at eps {format_strength(large)} {kind} still leaves accuracy {left:.3f} (chance is {chance:.3f}): "
                "gradients may be masked"
            )
    if attack.default_steps:
        steps = 5 * (settings.steps or attack.default_steps)
        found = breaks(attack.build(attacker, replace(settings, steps=steps), seed))
        if found >= enough:
            findings.append(f"{steps} steps break {found} images that {name} left standing: the attack had not converged")
    return findings

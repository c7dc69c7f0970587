"""Additive Gaussian noise of standard deviation eps, clipped to [0, 1].

torchattacks' GN draws from torch's global RNG without a seed argument; it is used as is,
because the runner seeds that RNG per batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustgate.attacks.base import AttackKind, AttackSettings, Perturb, attack_kinds, torchattack

if TYPE_CHECKING:  # torch only when attacking: validating a spec must not import it
    import torch


class GaussianNoise(AttackKind):
    needs_gradients = False

    def build(self, model: torch.nn.Module, settings: AttackSettings, seed: int) -> Perturb:
        import torchattacks  # torchattacks (and torch) only when attacking: validating a spec must not import them

        return torchattack(lambda: torchattacks.GN(model, std=settings.strength))


attack_kinds.register("gaussian_noise")(GaussianNoise())

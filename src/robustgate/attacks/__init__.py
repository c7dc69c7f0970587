"""Adversarial and noise attacks (one registered kind per file) and the protocol that scores them.

Attacks see [0, 1] images and the whole Classifier, normalisation included, so an eps is
always in pixel units.
"""

from robustgate.attacks.base import AttackKind, AttackSettings, attack_kinds
from robustgate.attacks import apgd as _apgd  # noqa: F401  (each import registers a kind)
from robustgate.attacks import cw as _cw  # noqa: F401
from robustgate.attacks import fgsm as _fgsm  # noqa: F401
from robustgate.attacks import gaussian_noise as _gaussian_noise  # noqa: F401
from robustgate.attacks import pgd as _pgd  # noqa: F401
from robustgate.attacks import salt_pepper as _salt_pepper  # noqa: F401
from robustgate.attacks import salt_pepper_search as _salt_pepper_search  # noqa: F401
from robustgate.attacks import square as _square  # noqa: F401

__all__ = ["AttackKind", "AttackSettings", "attack_kinds"]

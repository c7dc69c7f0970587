"""Every attack keeps images in shape and in [0, 1], stays inside its eps ball, and hurts a real model."""

from __future__ import annotations

import pytest
import torch

from robustgate.attacks import AttackSettings, attack_kinds
from robustgate.attacks.run import attacked_correct, predictions
from robustgate.data.imageset import ImageSet
from robustgate.models.classifier import Classifier

EPS = 8 / 255


def settings(kind: str, strength: float = EPS, norm: str = "Linf", steps: int | None = None) -> AttackSettings:
    return AttackSettings(strength, norm, steps, None, 1)


CASES = [
    ("fgsm", "Linf", EPS),
    ("pgd", "Linf", EPS),
    ("pgd", "L2", 0.5),
    ("apgd", "Linf", EPS),
    ("apgd", "L2", 0.5),
    ("cw", "L2", 0.5),
    ("square", "Linf", EPS),
    ("gaussian_noise", "Linf", 0.1),
    ("salt_pepper", "Linf", 0.05),
    ("salt_pepper_search", "Linf", 0.05),
]


@pytest.fixture(scope="module")
def batch(digits: tuple[ImageSet, ImageSet]) -> tuple[torch.Tensor, torch.Tensor]:
    test = digits[1]
    return test.floats()[:48], test.labels[:48]


@pytest.mark.parametrize(("kind", "norm", "strength"), CASES)
def test_attacks_keep_shape_range_and_their_budget(trained_cnn: Classifier, batch, kind: str, norm: str, strength: float) -> None:
    images, labels = batch
    steps = 20 if kind in ("square", "cw") else None
    torch.manual_seed(0)
    adversarial = attack_kinds.get(kind).build(trained_cnn, settings(kind, strength, norm, steps), seed=0)(images, labels)
    assert adversarial.shape == images.shape and adversarial.dtype == images.dtype
    adversarial = adversarial.detach()
    assert float(adversarial.min()) >= 0 and float(adversarial.max()) <= 1
    delta = (adversarial - images).flatten(1)
    if kind.startswith("salt_pepper"):
        changed = (delta.view(len(images), 3, -1) != 0).any(dim=1).float().mean()
        assert float(changed) < 0.08  # about `amount` of the pixel positions, or fewer where the search stopped early
        if kind == "salt_pepper":
            assert float(changed) > 0.02
    elif kind != "gaussian_noise":
        size = delta.abs().max(dim=1).values if norm == "Linf" else delta.norm(dim=1)
        assert float(size.max()) <= strength + 1e-5


@pytest.mark.parametrize("kind", ["fgsm", "pgd", "apgd", "square"])
def test_attacks_lower_the_accuracy_of_a_trained_model(trained_cnn: Classifier, batch, kind: str) -> None:
    images, labels = batch
    clean = float((predictions(trained_cnn, images) == labels).float().mean())
    perturb = attack_kinds.get(kind).build(trained_cnn, settings(kind, 16 / 255, steps=1000 if kind == "square" else None), seed=0)
    robust = float(attacked_correct(perturb, trained_cnn, trained_cnn, images, labels, seed=0).float().mean())
    assert clean > 0.9 and robust < clean - 0.2


def test_the_same_seed_gives_the_same_adversarial_result(trained_cnn: Classifier, batch) -> None:
    images, labels = batch
    runs = [
        attacked_correct(attack_kinds.get("pgd").build(trained_cnn, settings("pgd", 4 / 255), seed=3), trained_cnn, trained_cnn, images, labels, seed=3)
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])


def test_the_salt_and_pepper_search_breaks_what_one_draw_does_and_more(trained_cnn: Classifier, batch) -> None:
    images, labels = batch
    one, search = (
        attacked_correct(attack_kinds.get(k).build(trained_cnn, settings(k, 0.15), seed=0), trained_cnn, trained_cnn, images, labels, 0)
        for k in ("salt_pepper", "salt_pepper_search")
    )
    assert float(search.float().mean()) <= float(one.float().mean()) + 0.03
    assert float(search.float().mean()) < float((predictions(trained_cnn, images) == labels).float().mean())

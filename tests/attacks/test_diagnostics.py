"""Gradient-masking diagnostics flag a planted masked gradient and stay quiet on gradients that work."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustgate.attacks import AttackSettings
from robustgate.attacks.diagnostics import masking_findings
from robustgate.attacks.protocol import robust_correct
from robustgate.data.imageset import ImageSet
from robustgate.models.classifier import Classifier


class RoundInput(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 4) / 4  # zero gradient everywhere: the textbook masked gradient


@pytest.fixture(scope="module")
def batch(digits: tuple[ImageSet, ImageSet]) -> tuple[torch.Tensor, torch.Tensor]:
    return digits[1].floats()[:96], digits[1].labels[:96]


def findings_for(model: nn.Module, batch, eps: float = 8 / 255) -> list[str]:
    images, labels = batch
    settings = AttackSettings(eps, "Linf", 10, None, 1)
    result = robust_correct("pgd", settings, model, None, images, labels, seed=0, queries=300)
    return masking_findings("pgd", settings, model, model, images, labels, result, 10, seed=0, queries=300)


def test_a_rounding_layer_is_flagged_as_gradient_masking(trained_cnn: Classifier, batch) -> None:
    masked = trained_cnn.with_net(nn.Sequential(RoundInput(), trained_cnn.net)).eval()
    findings = findings_for(masked, batch)
    assert any("input gradient is exactly zero on 32 of 32 images" in f for f in findings), findings
    assert any("still leaves accuracy" in f for f in findings), findings  # PGD cannot move it at all


def test_working_gradients_raise_no_gradient_finding(trained_cnn: Classifier, batch) -> None:
    findings = findings_for(trained_cnn, batch)
    assert not any("gradient is" in f or "still leaves accuracy" in f for f in findings), findings


def test_noise_attacks_need_no_diagnostics(trained_cnn: Classifier, batch) -> None:
    images, labels = batch
    settings = AttackSettings(0.05, "Linf", None, None, 1)
    result = robust_correct("salt_pepper", settings, trained_cnn, None, images, labels, seed=0, queries=10)
    assert masking_findings("salt_pepper", settings, trained_cnn, trained_cnn, images, labels, result, 10, 0, 10) == []


def test_a_model_with_zero_gradients_is_also_attacked_without_them(trained_cnn: Classifier, batch) -> None:
    images, labels = batch
    masked = trained_cnn.with_net(nn.Sequential(RoundInput(), trained_cnn.net)).eval()
    settings = AttackSettings(16 / 255, "Linf", 10, None, 1)
    result = robust_correct("pgd", settings, masked, None, images, labels, seed=0, queries=300)
    counts = result.counts()
    # PGD cannot move through the rounding; the gradient-free round is what finds adversarial images.
    assert counts["gradient-free"] > counts["white-box"]


def test_pgd_still_breaking_images_in_its_last_steps_is_flagged_from_its_own_iterates(trained_cnn: Classifier, batch) -> None:
    images, labels = batch
    # steps so small the iterates cannot reach the ball's edge in 10 steps; at 16/255 the default step size breaks
    # nearly every image early (2 late of 94 fooled), far from the flag's bar (a tenth of them) on either thread count
    crawling = AttackSettings(16 / 255, "Linf", 10, 1 / 255, 1)
    result = robust_correct("pgd", crawling, trained_cnn, None, images, labels, seed=0, queries=20)
    assert result.first_fooled is not None and result.first_fooled.shape == labels.shape
    findings = masking_findings("pgd", crawling, trained_cnn, trained_cnn, images, labels, result, 10, seed=0, queries=20)
    assert any("first fell in the last 2 of pgd-10's 10 steps" in f for f in findings), findings
    default = AttackSettings(16 / 255, "Linf", 10, None, 1)
    result = robust_correct("pgd", default, trained_cnn, None, images, labels, seed=0, queries=20)
    findings = masking_findings("pgd", default, trained_cnn, trained_cnn, images, labels, result, 10, seed=0, queries=20)
    assert not any("first fell" in f for f in findings), findings


def test_the_checks_run_on_non_square_images(trained_cnn: Classifier, batch) -> None:
    images, labels = batch
    wide = torch.nn.functional.interpolate(images, size=(12, 16), mode="bilinear", align_corners=False)
    settings = AttackSettings(2 / 255, "Linf", 10, None, 1)
    for thorough in (False, True):
        result = robust_correct("pgd", settings, trained_cnn, None, wide, labels, seed=0, queries=30)
        findings = masking_findings("pgd", settings, trained_cnn, trained_cnn, wide, labels, result, 10, 0, 30, thorough)
        assert not any("gradient is" in f for f in findings), findings

"""The robust accuracy of int8 models: worst case over transfer and a gradient-free attack, never above clean."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustgate.attacks import AttackSettings, attack_kinds
from robustgate.attacks.protocol import METHODS, IncompleteProtocol, Policy, fake_quant_twin, robust_correct
from robustgate.attacks.run import attacked_correct, leg_correct, predictions
from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.ptq import PTQParams
from robustgate.data.imageset import ImageSet
from robustgate.models.classifier import Classifier, Normalize


@pytest.fixture(scope="module")
def int8(trained_cnn: Classifier, digits: tuple[ImageSet, ImageSet]) -> Classifier:
    ctx = StepContext(lambda _: digits[0], "digits-train", torch.zeros(2, 3, 16, 16), 0, lambda _: None)
    return compression_steps.get("ptq").apply(trained_cnn, PTQParams(), ctx)


@pytest.fixture(scope="module")
def batch(digits: tuple[ImageSet, ImageSet]) -> tuple[torch.Tensor, torch.Tensor]:
    return digits[1].floats()[:96], digits[1].labels[:96]


def trained_normalize() -> Normalize:
    return Normalize((0.5,) * 3, (0.25,) * 3)


def pgd(eps: float) -> AttackSettings:
    return AttackSettings(eps, "Linf", 10, None, 1)


def test_an_int8_model_is_scored_by_its_twin_transfer_and_a_gradient_free_attack(trained_cnn, int8, batch) -> None:
    images, labels = batch
    # A white-box attack cannot even start on int8 kernels: there is no autograd.
    assert int8(images[:2].requires_grad_(True)).grad_fn is None
    result = robust_correct("pgd", pgd(4 / 255), int8, trained_cnn, images, labels, seed=0, queries=50)
    clean = predictions(int8, images) == labels
    assert result.correct.sum() <= clean.sum()
    assert not (result.correct & ~clean).any()
    assert torch.equal(result.correct, result.found_by == 0)
    counts = result.counts()
    assert set(counts) == set(METHODS[1:]) and counts["white-box"] == 0
    assert counts["twin"] > 0 and counts["clean"] == int((~clean).sum())
    assert result.twin_agreement is not None and result.twin_agreement > 0.95


def test_the_protocol_is_the_worst_case_of_its_attacks(trained_cnn, int8, batch) -> None:
    images, labels = batch
    result = robust_correct("pgd", pgd(4 / 255), int8, trained_cnn, images, labels, seed=0, queries=50)
    pgd_on = lambda model: attack_kinds.get("pgd").build(model, pgd(4 / 255), 0)  # noqa: E731
    twin = fake_quant_twin(int8, images[:2])
    clean = predictions(int8, images) == labels
    via_twin = attacked_correct(pgd_on(twin), twin, int8, images, labels, 0)
    transfer = attacked_correct(pgd_on(trained_cnn), trained_cnn, int8, images, labels, 0)
    square = AttackSettings(4 / 255, "Linf", 50, None, 1)
    free = attacked_correct(attack_kinds.get("square").build(int8, square, 0), int8, int8, images, labels, 0)
    assert torch.equal(result.correct, clean & via_twin & transfer & free)
    for single in (clean, via_twin, transfer, free):
        assert result.correct.sum() <= single.sum()


def test_every_int8_path_has_a_faithful_differentiable_twin(trained_cnn, digits, batch) -> None:
    images, labels = batch
    ctx = StepContext(lambda _: digits[0], "digits-train", torch.zeros(2, 3, 16, 16), 0, lambda _: None)
    for params in (PTQParams(), PTQParams(method="dynamic"), PTQParams(backend="qnnpack")):
        int8 = compression_steps.get("ptq").apply(trained_cnn, params, ctx)
        twin = fake_quant_twin(int8, images[:2])
        assert (predictions(twin, images) == predictions(int8, images)).float().mean() > 0.95
        x = images[:8].clone().requires_grad_(True)
        gradient = torch.autograd.grad(twin(x).logsumexp(1).sum(), x)[0]
        assert torch.isfinite(gradient).all() and (gradient != 0).float().mean() > 0.5


def test_eps_zero_gives_clean_accuracy(trained_cnn, int8, batch) -> None:
    images, labels = batch
    for model, parent in ((trained_cnn, None), (int8, trained_cnn)):
        result = robust_correct("pgd", pgd(0.0), model, parent, images, labels, seed=0, queries=20)
        assert torch.equal(result.correct, predictions(model, images) == labels)


def test_robust_accuracy_falls_along_an_eps_sweep(trained_cnn, batch) -> None:
    images, labels = batch
    curve = [
        float(robust_correct("pgd", pgd(eps / 255), trained_cnn, None, images, labels, seed=0, queries=1).correct.float().mean())
        for eps in (0, 1, 2, 4, 8, 16)
    ]
    assert all(later <= earlier + 0.02 for earlier, later in zip(curve, curve[1:])), curve
    assert curve[0] > 0.9 and curve[-1] < 0.2


def test_noise_attacks_run_on_int8_models_directly(int8, trained_cnn, batch) -> None:
    images, labels = batch
    result = robust_correct("salt_pepper", AttackSettings(0.1, "Linf", None, None, 1), int8, trained_cnn, images, labels, seed=0, queries=10)
    counts = result.counts()
    assert counts["transfer"] == counts["gradient-free"] == 0 and counts["white-box"] > 0


def test_l2_pgd_at_eps_zero_is_the_clean_accuracy(trained_cnn, batch) -> None:
    images, labels = batch
    result = robust_correct("pgd", AttackSettings(0.0, "L2", 10, None, 1), trained_cnn, None, images, labels, seed=0, queries=10)
    assert torch.equal(result.correct, predictions(trained_cnn, images) == labels)


class AddsAConstant(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.conv(x)) + 1.0  # FX turns this into the scalar form of quantized.add
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


def test_twins_handle_scalar_adds_and_linear_layers_without_bias(digits, batch) -> None:
    images, _ = batch
    torch.manual_seed(0)
    model = Classifier(trained_normalize(), AddsAConstant()).eval()
    ctx = StepContext(lambda _: digits[0], "digits-train", torch.zeros(2, 3, 16, 16), 0, lambda _: None)
    for params in (PTQParams(), PTQParams(method="dynamic")):
        int8 = compression_steps.get("ptq").apply(model, params, ctx)
        twin = fake_quant_twin(int8, images[:2])
        assert twin is not None
        with torch.inference_mode():
            assert torch.allclose(twin(images), int8(images), atol=0.05)


# -- issue 18: the protocol on architectures beyond ResNets, failing closed ------------------------


def with_dropout(model: Classifier) -> Classifier:
    """The trained CNN with Dropout before its classifier (the same weights; Dropout is the identity in eval)."""
    layers = list(model.net)
    return model.with_net(nn.Sequential(*layers[:-1], nn.Dropout(0.5), layers[-1])).eval()


def test_a_dropout_cnn_is_attacked_through_its_twin(trained_cnn, digits, batch) -> None:
    images, labels = batch
    model = with_dropout(trained_cnn)
    ctx = StepContext(lambda _: digits[0], "digits-train", torch.zeros(2, 3, 16, 16), 0, lambda _: None)
    int8 = compression_steps.get("ptq").apply(model, PTQParams(), ctx)
    assert any(type(m).__name__ == "Dropout" and "quantized" in type(m).__module__ for m in int8.net.modules())
    result = robust_correct("pgd", pgd(4 / 255), int8, model, images, labels, seed=0, queries=50)
    assert result.unavailable == {} and result.twin_agreement is not None and result.twin_agreement >= 0.99
    assert result.counts()["twin"] > 0  # the twin leg ran and found what transfer and Square did not


class StopsGradients(nn.Module):
    """A model without autograd that is not robustgate's int8 (a user's exported or wrapped network)."""

    def __init__(self, model: Classifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(x)


def test_a_leg_that_cannot_run_fails_the_protocol_unless_accepted(trained_cnn, batch) -> None:
    images, labels = batch
    opaque = StopsGradients(trained_cnn).eval()
    with pytest.raises(IncompleteProtocol, match=r"(?s)cannot run its twin and transfer legs .*not of a StopsGradients.*accept_missing: \[twin, transfer\]"):
        robust_correct("pgd", pgd(4 / 255), opaque, None, images, labels, seed=0, queries=20)
    accepted = Policy(accept_missing=frozenset({"twin", "transfer"}))
    result = robust_correct("pgd", pgd(4 / 255), opaque, None, images, labels, seed=0, queries=20, policy=accepted)
    assert set(result.unavailable) == {"twin", "transfer"}
    assert "twin" in result.unavailable and "fake-quant twins of its own int8 networks" in result.unavailable["twin"]
    counts = result.counts()
    assert counts["twin"] == counts["transfer"] == counts["white-box"] == 0  # only the gradient-free leg ran


def test_a_twin_below_the_agreement_bar_is_a_missing_leg() -> None:
    strict = Policy(min_twin_agreement=0.99)
    with pytest.raises(IncompleteProtocol, match=r"twin reproduces the int8 model's layers on only 97.0% .*min_twin_agreement: 0.99"):
        strict.gaps({}, 0.97)
    assert strict.gaps({}, 0.995) == {}
    lenient = Policy(accept_missing=frozenset({"twin"}), min_twin_agreement=0.99)
    assert "97.0%" in lenient.gaps({}, 0.97)["twin"]


def test_images_the_attacker_gets_wrong_are_still_attacked(trained_cnn, digits, batch) -> None:
    """APGD (like CW and Square) leaves the attacked model's own mistakes untouched; scored on another model,
    those images must still be perturbed, or the other model's robust accuracy is overstated."""
    images, labels = batch
    torch.manual_seed(1)
    blurred = trained_cnn.with_net(nn.Sequential(nn.AvgPool2d(3, 1, 1), *trained_cnn.net)).eval()  # a weaker attacker
    wrong_there = (predictions(blurred, images) != labels) & (predictions(trained_cnn, images) == labels)
    assert int(wrong_there.sum()) >= 5
    settings = AttackSettings(8 / 255, "Linf", 10, None, 1)
    apgd = attack_kinds.get("apgd").build(blurred, settings, 0)
    untouched = apgd(images[wrong_there], labels[wrong_there])
    assert torch.equal(untouched, images[wrong_there])  # what torchattacks alone does
    survived = leg_correct("apgd", settings, blurred, trained_cnn, images, labels, seed=0)
    assert int((~survived & wrong_there).sum()) > 0


def test_restarts_keep_going_until_the_scored_model_is_fooled(int8, digits) -> None:
    # the whole test part and a short PGD, so random restarts break ~10 more images (not 1-2 of a batch) whichever
    # thread count trained the network
    images, labels = digits[1].floats(), digits[1].labels
    twin = fake_quant_twin(int8, images[:2])
    once = leg_correct("pgd", AttackSettings(8 / 255, "Linf", 2, None, 1), twin, int8, images, labels, seed=0)
    thrice = leg_correct("pgd", AttackSettings(8 / 255, "Linf", 2, None, 3), twin, int8, images, labels, seed=0)
    assert not (thrice & ~once).any()  # the first restart is the single run; later ones only add broken images
    assert int(thrice.sum()) < int(once.sum())


def test_square_and_the_protocol_run_on_non_square_images(trained_cnn, digits) -> None:
    wide = digits[1].images[:64]
    images = torch.nn.functional.interpolate(wide.float() / 255, size=(24, 32), mode="bilinear", align_corners=False)
    labels = digits[1].labels[:64]
    for norm, eps in (("Linf", 8 / 255), ("L2", 0.5)):
        square = attack_kinds.get("square").build(trained_cnn, AttackSettings(eps, norm, 50, None, 1), 0)
        for x in (images, images.transpose(2, 3).contiguous()):
            adversarial = square(x, labels)
            delta = (adversarial - x).flatten(1)
            size = delta.abs().amax(1) if norm == "Linf" else delta.norm(dim=1)
            assert adversarial.shape == x.shape and float(size.max()) <= eps + 1e-5
    ctx = StepContext(lambda _: digits[0], "digits-train", torch.zeros(2, 3, 24, 32), 0, lambda _: None)
    int8 = compression_steps.get("ptq").apply(trained_cnn, PTQParams(), ctx)
    result = robust_correct("pgd", pgd(8 / 255), int8, trained_cnn, images, labels, seed=0, queries=50)
    assert result.unavailable == {}
    assert int(result.correct.sum()) < int((predictions(int8, images) == labels).sum())


def test_symmetric_adds_the_gradient_free_leg_to_a_differentiable_model(trained_cnn, int8, batch) -> None:
    images, labels = batch
    direct = robust_correct("pgd", pgd(4 / 255), trained_cnn, None, images, labels, seed=0, queries=50)
    both = robust_correct("pgd", pgd(4 / 255), trained_cnn, None, images, labels, seed=0, queries=50, symmetric=True)
    assert direct.legs == ("white-box",) and both.legs == ("white-box", "gradient-free")
    # the same white-box attack first, then Square on what it left standing: never more robust
    assert not (both.correct & ~direct.correct).any()
    assert int((both.found_by == METHODS.index("white-box")).sum()) == int((direct.found_by == METHODS.index("white-box")).sum())
    quantized = robust_correct("pgd", pgd(4 / 255), int8, trained_cnn, images, labels, seed=0, queries=50, symmetric=True)
    assert quantized.legs == ("twin", "transfer", "gradient-free")  # an int8 model has its three legs either way


def test_the_transfer_leg_scores_the_parents_own_white_box_images_made_once(trained_cnn, int8, batch) -> None:
    """The fp32 parent's white-box attack and an int8 variant's transfer leg attack one model the same way: its
    adversarial images are made once and scored on each, with the same results as two separate attacks."""
    images, labels = batch
    kept: dict[str, dict[str, torch.Tensor]] = {}
    made: list[int] = []

    def reuse(make):  # the session's store, as AttackEvaluation keys it by model, images and attack
        if "parent" not in kept:
            made.append(1)
            kept["parent"] = make()
        return kept["parent"]

    settings = pgd(4 / 255)
    fp32_alone = robust_correct("pgd", settings, trained_cnn, None, images, labels, seed=0, queries=20, differentiable=True)
    int8_alone = robust_correct("pgd", settings, int8, trained_cnn, images, labels, seed=0, queries=20)
    fp32 = robust_correct("pgd", settings, trained_cnn, None, images, labels, seed=0, queries=20, differentiable=True,
                          reuse={"white-box": reuse})
    int8_result = robust_correct("pgd", settings, int8, trained_cnn, images, labels, seed=0, queries=20,
                                 reuse={"transfer": reuse})
    assert made == [1]
    assert kept["parent"]["images"].shape == images.shape
    assert not torch.equal(kept["parent"]["images"], images)  # really perturbed
    assert torch.equal(fp32.correct, fp32_alone.correct) and torch.equal(fp32.first_fooled, fp32_alone.first_fooled)
    assert torch.equal(int8_result.correct, int8_alone.correct) and torch.equal(int8_result.found_by, int8_alone.found_by)
    assert int(fp32.counts()["white-box"]) > 0  # the attack broke images, so the reuse was scored on something


def test_restarts_after_the_first_attack_per_scorer_even_with_reuse(trained_cnn, int8, batch) -> None:
    """Later restarts attack the images the scorer still gets right, which differ by scorer: they always run."""
    images, labels = batch
    settings = AttackSettings(4 / 255, "Linf", 2, None, 3)
    kept: dict[str, dict[str, torch.Tensor]] = {}

    def reuse(make):
        if "parent" not in kept:
            kept["parent"] = make()
        return kept["parent"]

    alone = leg_correct("pgd", settings, trained_cnn, int8, images, labels, seed=0)
    reused = leg_correct("pgd", settings, trained_cnn, int8, images, labels, seed=0, reuse=reuse)
    assert torch.equal(alone, reused)

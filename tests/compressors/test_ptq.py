"""Post-training int8 quantization produces a model that really runs int8 kernels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.pipeline import measure
from robustgate.compressors.ptq import PTQParams
from robustgate.data.imageset import ImageSet
from robustgate.data.digits import load_digits_domain
from robustgate.data.resize import to_model_geometry
from robustgate.inference import predict_logits
from robustgate.models.classifier import Classifier, Normalize
from robustgate.models.train import train_classifier
from robustgate.spec.model import TrainParams


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )


@pytest.fixture(scope="module")
def digits() -> ImageSet:
    images, labels, classes = load_digits_domain("handwritten")
    return ImageSet(to_model_geometry(images, (16, 16), 3), labels, classes)


@pytest.fixture(scope="module")
def trained(digits: ImageSet) -> Classifier:
    torch.manual_seed(0)
    model = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), small_cnn())
    params = TrainParams(on="digits", epochs=6, lr=0.01)
    model.load_state_dict(train_classifier(model, digits, params, seed=0, device=torch.device("cpu"), progress=print))
    return model.eval()


def context(digits: ImageSet) -> StepContext:
    return StepContext(
        dataset=lambda name: digits, default_data="digits", example=torch.zeros(2, 3, 16, 16), seed=0, progress=lambda _: None
    )


def test_int8_model_runs_quantized_kernels_and_agrees_with_fp32(trained: Classifier, digits: ImageSet) -> None:
    ptq = compression_steps.get("ptq")
    quantized = ptq.apply(trained, PTQParams(), context(digits))
    kinds = {type(m).__module__ for m in quantized.net.modules()}
    assert any(k.startswith("torch.ao.nn.intrinsic.quantized") or k.startswith("torch.ao.nn.quantized") for k in kinds)
    convs = [m for m in quantized.net.modules() if hasattr(m, "weight") and callable(m.weight)]
    assert convs and all(m.weight().dtype == torch.qint8 for m in convs)

    fp32 = predict_logits(trained, digits, torch.device("cpu")).argmax(1)
    int8 = predict_logits(quantized, digits, torch.device("cpu")).argmax(1)
    assert (fp32 == int8).float().mean() > 0.95

    # No autograd through int8 kernels: this is why attacks need a differentiable twin later.
    x = digits.floats()[:4].requires_grad_(True)
    assert quantized(x).grad_fn is None


def test_int8_model_is_smaller_with_the_same_arithmetic(trained: Classifier, digits: ImageSet) -> None:
    quantized = compression_steps.get("ptq").apply(trained, PTQParams(), context(digits))
    example = torch.zeros(2, 3, 16, 16)
    fp32_size, int8_size = measure(trained, example), measure(quantized, example, macs=None)
    assert int8_size.bytes < 0.5 * fp32_size.bytes
    assert int8_size.params == pytest.approx(fp32_size.params, rel=0.05)  # BN folds into convs
    assert fp32_size.macs > 0


def test_restored_int8_model_matches_the_one_that_was_built(trained: Classifier, digits: ImageSet) -> None:
    ptq = compression_steps.get("ptq")
    ctx = context(digits)
    built = ptq.apply(trained, PTQParams(), ctx)
    restored = ptq.restore(trained, PTQParams(), ptq.state(built), ctx)
    x = digits.floats()[:64]
    with torch.inference_mode():
        assert torch.equal(built(x), restored(x))



@pytest.mark.parametrize("backend", ["x86", "qnnpack"])
@pytest.mark.parametrize("observer", ["histogram", "minmax", "moving_average"])
def test_engines_and_observers_all_give_faithful_int8_models(
    trained: Classifier, digits: ImageSet, backend: str, observer: str
) -> None:
    quantized = compression_steps.get("ptq").apply(trained, PTQParams(backend=backend, observer=observer), context(digits))
    fp32 = predict_logits(trained, digits, torch.device("cpu")).argmax(1)
    int8 = predict_logits(quantized, digits, torch.device("cpu")).argmax(1)
    assert (fp32 == int8).float().mean() > 0.95


@pytest.mark.parametrize(
    ("backend", "per_channel", "scheme"),
    [
        ("x86", None, torch.per_channel_affine),  # the engine default
        ("x86", False, torch.per_tensor_affine),
        ("qnnpack", None, torch.per_tensor_affine),
        ("qnnpack", True, torch.per_channel_affine),
    ],
)
def test_weight_granularity_follows_the_spec(trained: Classifier, digits: ImageSet, backend, per_channel, scheme) -> None:
    params = PTQParams(backend=backend, per_channel=per_channel)
    quantized = compression_steps.get("ptq").apply(trained, params, context(digits))
    convs = [m for m in quantized.net.modules() if type(m).__name__ in ("ConvReLU2d", "Conv2d") and hasattr(m, "weight") and callable(m.weight)]
    assert convs and {m.weight().qscheme() for m in convs} == {scheme}

"""Post-training int8 quantization: every path gives a model that really runs int8 kernels,
agrees with fp32, is smaller, and rebuilds exactly from its cached state."""

from __future__ import annotations

import pytest
import torch
import torchvision
from pydantic import ValidationError
from torch import nn

from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.pipeline import measure
from robustgate.compressors.prune import PruneParams, prune_channels
from robustgate.compressors.ptq import PTQParams
from robustgate.data.imageset import ImageSet
from robustgate.errors import CompressionError
from robustgate.inference import predict_logits
from robustgate.models.classifier import Classifier, Normalize
from robustgate.models.train import train_classifier
from robustgate.spec.model import TrainParams

ptq = compression_steps.get("ptq")
CPU = torch.device("cpu")
EXAMPLE = torch.zeros(2, 3, 16, 16)


def context(calibration: ImageSet) -> StepContext:
    return StepContext(dataset=lambda name: calibration, default_data="digits-train", example=EXAMPLE, seed=0, progress=lambda _: None)


def agreement(a: Classifier, b: Classifier, data: ImageSet) -> float:
    return float((predict_logits(a, data, CPU).argmax(1) == predict_logits(b, data, CPU).argmax(1)).float().mean())


def assert_restores_exactly(model: Classifier, quantized: Classifier, params: PTQParams, ctx: StepContext, data: ImageSet) -> None:
    restored = ptq.restore(model, params, ptq.state(quantized), ctx)
    x = data.floats()[:64]
    with torch.inference_mode():
        assert torch.equal(quantized(x), restored(x))


def classifier(net: nn.Module) -> Classifier:
    return Classifier(Normalize((0.5,) * 3, (0.25,) * 3), net).eval()


@pytest.fixture(scope="module")
def trained_resnet(digits: tuple[ImageSet, ImageSet]) -> Classifier:
    """A torchvision ResNet-18 trained briefly on the 16x16 digits: the architecture eager mode converts."""
    torch.manual_seed(0)
    model = classifier(torchvision.models.resnet18(num_classes=10))
    params = TrainParams(on="digits-train", epochs=2, lr=0.01, augment=False)
    model.load_state_dict(train_classifier(model, digits[0], params, seed=0, device=CPU, progress=lambda _: None))
    return model.eval()


# -- FX graph mode (the default) -------------------------------------------------------------------


def test_int8_model_runs_quantized_kernels_and_agrees_with_fp32(trained_cnn: Classifier, digits) -> None:
    train, test = digits
    quantized = ptq.apply(trained_cnn, PTQParams(), context(train))
    kinds = {type(m).__module__ for m in quantized.net.modules()}
    assert any(k.startswith("torch.ao.nn.intrinsic.quantized") or k.startswith("torch.ao.nn.quantized") for k in kinds)
    convs = [m for m in quantized.net.modules() if hasattr(m, "weight") and callable(m.weight)]
    assert convs and all(m.weight().dtype == torch.qint8 for m in convs)
    assert agreement(trained_cnn, quantized, test) > 0.95

    # No autograd through int8 kernels: this is why attacks need a differentiable twin later.
    x = test.floats()[:4].requires_grad_(True)
    assert quantized(x).grad_fn is None


def test_int8_model_is_smaller_with_the_same_arithmetic(trained_cnn: Classifier, digits) -> None:
    quantized = ptq.apply(trained_cnn, PTQParams(), context(digits[0]))
    fp32_size, int8_size = measure(trained_cnn, EXAMPLE), measure(quantized, EXAMPLE, macs=None)
    assert int8_size.bytes < 0.5 * fp32_size.bytes
    assert int8_size.params == pytest.approx(fp32_size.params, rel=0.05)  # BN folds into convs
    assert fp32_size.macs > 0


def test_restored_int8_model_matches_the_one_that_was_built(trained_cnn: Classifier, digits) -> None:
    ctx = context(digits[0])
    assert_restores_exactly(trained_cnn, ptq.apply(trained_cnn, PTQParams(), ctx), PTQParams(), ctx, digits[1])


@pytest.mark.parametrize("backend", ["x86", "qnnpack"])
@pytest.mark.parametrize("observer", ["histogram", "minmax", "moving_average"])
def test_engines_and_observers_all_give_faithful_int8_models(trained_cnn: Classifier, digits, backend: str, observer: str) -> None:
    quantized = ptq.apply(trained_cnn, PTQParams(backend=backend, observer=observer), context(digits[0]))
    assert agreement(trained_cnn, quantized, digits[1]) > 0.95


@pytest.mark.parametrize(
    ("backend", "per_channel", "scheme"),
    [
        ("x86", None, torch.per_channel_affine),  # the engine default
        ("x86", False, torch.per_tensor_affine),
        ("qnnpack", None, torch.per_tensor_affine),
        ("qnnpack", True, torch.per_channel_affine),
    ],
)
def test_weight_granularity_follows_the_spec(trained_cnn: Classifier, digits, backend, per_channel, scheme) -> None:
    quantized = ptq.apply(trained_cnn, PTQParams(backend=backend, per_channel=per_channel), context(digits[0]))
    convs = [m for m in quantized.net.modules() if type(m).__name__ in ("ConvReLU2d", "Conv2d") and hasattr(m, "weight") and callable(m.weight)]
    assert convs and {m.weight().qscheme() for m in convs} == {scheme}


def test_an_int8_model_cannot_be_quantized_again(trained_cnn: Classifier, digits) -> None:
    quantized = ptq.apply(trained_cnn, PTQParams(), context(digits[0]))
    with pytest.raises(CompressionError, match="already int8") as info:
        ptq.apply(quantized, PTQParams(backend="pt2e"), context(digits[0]))
    assert "keep one ptq step" in info.value.hint


# -- eager mode ---------------------------------------------------------------------------------------


def test_eager_mode_quantizes_a_torchvision_resnet_through_its_quantizable_twin(trained_resnet: Classifier, digits) -> None:
    train, test = digits
    params = PTQParams(method="eager")
    quantized = ptq.apply(trained_resnet, params, context(train))
    kinds = {type(m).__name__ for m in quantized.net.modules()}
    assert {"QuantizableBasicBlock", "ConvReLU2d", "QFunctional", "Quantize"} <= kinds  # fused, int8 adds, stubs
    assert agreement(trained_resnet, quantized, test) > 0.95
    assert measure(quantized, EXAMPLE, macs=0).bytes < 0.3 * measure(trained_resnet, EXAMPLE).bytes
    assert_restores_exactly(trained_resnet, quantized, params, context(train), test)


def test_eager_mode_keeps_the_channels_of_a_pruned_resnet(trained_resnet: Classifier, digits) -> None:
    train, test = digits
    pruned = prune_channels(trained_resnet, PruneParams(method="l1", ratio=0.5), context(train))
    quantized = ptq.apply(pruned, PTQParams(method="eager"), context(train))
    convs = {name: m.weight().shape[0] for name, m in quantized.net.named_modules() if type(m).__name__ == "ConvReLU2d"}
    assert convs["quantized.layer1.0.conv1"] == pruned.net.layer1[0].conv1.out_channels < 64
    # Pruning without fine-tuning costs accuracy; what int8 must keep is the pruned model's predictions.
    assert agreement(pruned, quantized, test) > 0.9


def test_eager_mode_takes_a_model_that_has_its_own_quant_stubs(digits) -> None:
    from torch.ao.quantization import DeQuantStub, QuantStub

    torch.manual_seed(0)
    net = nn.Sequential(
        QuantStub(), nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10), DeQuantStub()
    )
    quantized = ptq.apply(classifier(net), PTQParams(method="eager"), context(digits[0]))
    assert {"Quantize", "Conv2d", "Linear"} <= {type(m).__name__ for m in quantized.net.modules()}
    assert quantized.net.quantized[1].weight().dtype == torch.qint8


def test_eager_mode_refuses_a_model_it_cannot_wire_with_the_reason(trained_cnn: Classifier, digits) -> None:
    with pytest.raises(CompressionError, match="eager cannot quantize a Sequential: eager mode needs QuantStub") as info:
        ptq.apply(trained_cnn, PTQParams(method="eager"), context(digits[0]))
    assert "method: fx" in info.value.hint


# -- dynamic ------------------------------------------------------------------------------------------


def test_dynamic_int8_quantizes_linear_layers_only_without_calibration(trained_cnn: Classifier, digits) -> None:
    train, test = digits

    def no_data(name: str) -> ImageSet:
        raise AssertionError("dynamic quantization must not read calibration data")

    ctx = StepContext(dataset=no_data, default_data=None, example=EXAMPLE, seed=0, progress=lambda _: None)
    quantized = ptq.apply(trained_cnn, PTQParams(method="dynamic"), ctx)
    kinds = {type(m).__module__ + "." + type(m).__name__ for m in quantized.net.modules()}
    assert "torch.ao.nn.quantized.dynamic.modules.linear.Linear" in kinds
    assert "torch.nn.modules.conv.Conv2d" in kinds  # convolutions stay fp32
    assert agreement(trained_cnn, quantized, test) > 0.98
    assert_restores_exactly(trained_cnn, quantized, PTQParams(method="dynamic"), ctx, test)


def test_dynamic_int8_on_a_model_without_linear_layers_says_so(digits) -> None:
    net = nn.Sequential(nn.Conv2d(3, 10, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(CompressionError, match="quantizes Linear layers only, and this model has none"):
        ptq.apply(classifier(net), PTQParams(method="dynamic"), context(digits[0]))


# -- PT2E (torchao, compiled by inductor) -------------------------------------------------------------


@pytest.fixture(scope="module")
def pt2e_int8(trained_cnn: Classifier, digits) -> Classifier:
    """Built once: every PT2E model is compiled by inductor, which takes seconds even for a small CNN."""
    return ptq.apply(trained_cnn, PTQParams(backend="pt2e"), context(digits[0]))


def test_pt2e_model_runs_compiled_int8_and_agrees_with_fp32(trained_cnn: Classifier, pt2e_int8: Classifier, digits) -> None:
    stored = pt2e_int8.net.converted.state_dict()
    weights = [t for t in stored.values() if t.dtype == torch.int8]
    assert len(weights) == 4  # three convolutions and the classifier, folded to int8
    assert not any(t.dtype == torch.float32 and t.dim() > 1 for t in stored.values())  # no fp32 weights left behind
    assert agreement(trained_cnn, pt2e_int8, digits[1]) > 0.95
    assert pt2e_int8(digits[1].floats()[:4].requires_grad_(True)).grad_fn is None
    fp32_size, int8_size = measure(trained_cnn, EXAMPLE), measure(pt2e_int8, EXAMPLE, macs=0)
    assert int8_size.bytes < 0.5 * fp32_size.bytes
    assert int8_size.params == pytest.approx(fp32_size.params, rel=0.05)


def test_pt2e_model_serves_every_batch_size(trained_cnn: Classifier, pt2e_int8: Classifier, digits) -> None:
    x = digits[1].floats()[:37]
    with torch.inference_mode():
        whole = pt2e_int8(x)
        parts = torch.cat([pt2e_int8(x[:1]), pt2e_int8(x[1:5]), pt2e_int8(x[5:])])
    assert whole.shape == (37, 10)
    assert torch.allclose(whole, parts, atol=1e-4)


def test_pt2e_model_restores_from_its_observer_statistics(trained_cnn: Classifier, pt2e_int8: Classifier, digits) -> None:
    state = ptq.state(pt2e_int8)
    assert set(state) == {"observers"} and all(k.startswith("activation_post_process_") for k in state["observers"])
    assert_restores_exactly(trained_cnn, pt2e_int8, PTQParams(backend="pt2e"), context(digits[0]), digits[1])


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 10, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        out = self.body(x)
        if out.sum() > 0:  # Python control flow on a tensor's value: torch.export cannot capture it
            return out
        return -out


def test_pt2e_on_a_model_export_cannot_capture_names_export(digits) -> None:
    with pytest.raises(CompressionError, match=r"torch.export\(strict=True\) cannot capture the model") as info:
        ptq.apply(classifier(DataDependent()), PTQParams(backend="pt2e"), context(digits[0]))
    assert "backend: x86" in info.value.hint


# -- parameters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"backend": "pt2e", "method": "eager"}, "backend: pt2e has its own graph capture"),
        ({"backend": "pt2e", "per_channel": False}, "quantizes weights per channel only"),
        ({"method": "dynamic", "calibrate": {"on": "x"}}, "calibrate has no effect"),
        ({"method": "dynamic", "observer": "minmax", "calibrate": {"on": "x"}}, "calibrate and observer have no effect"),
    ],
)
def test_combinations_that_mean_nothing_are_refused(given: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PTQParams(**given)


def test_pt2e_model_has_a_differentiable_twin_that_agrees_with_it(pt2e_int8: Classifier, digits) -> None:
    x = digits[1].floats()[:128]
    twin = pt2e_int8.with_net(pt2e_int8.net.twin(pt2e_int8.normalize(x[:2]))).eval()
    with torch.inference_mode():
        assert (twin(x).argmax(1) == pt2e_int8(x).argmax(1)).float().mean() > 0.95
    grad_input = x[:8].clone().requires_grad_(True)
    gradient = torch.autograd.grad(twin(grad_input).logsumexp(1).sum(), grad_input)[0]
    assert torch.isfinite(gradient).all() and (gradient != 0).float().mean() > 0.5

"""The architectures teams ship to edge devices go through every int8 path, the twin, pruning and distillation.

Mechanics at 48x48, not accuracy: each network gets one epoch on 384 digits first, so its
activations are those of a network that has seen data. ``benchmarks/bench_edge_architectures.py``
measures the same matrix at 224 px and after real training.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from int8_checks import assert_faithful_twin, per_arch

from robustgate.attacks.protocol import MIN_TWIN_AGREEMENT
from robustgate.attacks.run import predictions
from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.distill import DistillParams
from robustgate.compressors.int8.lockstep import twin_fidelity
from robustgate.compressors.int8.pt2e import PT2EPath
from robustgate.compressors.int8.twin import pt2e_twin
from robustgate.compressors.prune import PruneParams, prune_channels
from robustgate.compressors.ptq import PTQParams
from robustgate.compressors.size import count_macs, count_params
from robustgate.data.digits import load_digits_domain
from robustgate.data.imageset import ImageSet
from robustgate.data.resize import to_model_geometry
from robustgate.errors import CompressionError
from robustgate.models.classifier import Classifier, Normalize
from robustgate.models.state import load_state
from robustgate.models.train import train_classifier
from robustgate.spec.model import TrainParams

SIZE = 48  # not 32: at 1x1 final feature maps torch.ao's quantized mean fails on ShuffleNet (channels_last)
ARCHS = [
    "resnet18", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_v2_s",
    "shufflenet_v2_x0_5", "squeezenet1_1", "mnasnet0_5", "regnet_x_400mf", "regnet_y_400mf", "densenet121",
    "googlenet", "convnext_tiny",
]
PT2E = ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "shufflenet_v2_x0_5", "squeezenet1_1", "mnasnet0_5",
        "regnet_y_400mf", "googlenet", "convnext_tiny"]  # every op kind of the matrix; the benchmark exports all 14
EAGER = {"resnet18", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v2_x0_5", "googlenet"}
PRUNING_UNSUPPORTED = {"shufflenet_v2_x0_5"}  # Torch-Pruning cannot map channels through its channel shuffle
ptq = compression_steps.get("ptq")


FAST = {"observer": "minmax", "calibrate": {"on": "digits-train", "samples": 64}}  # mechanics: quick calibration


@pytest.fixture(scope="module")
def digits32() -> tuple[ImageSet, torch.Tensor]:
    images, labels, classes = load_digits_domain("handwritten")
    data = ImageSet(to_model_geometry(images, (SIZE, SIZE), 3), labels, classes)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(data), generator=generator)
    return data.subset(order[:384]), data.subset(order[384:512]).floats()


def context(train: ImageSet) -> StepContext:
    return StepContext(lambda _: train, "digits-train", torch.zeros(2, 3, SIZE, SIZE), 0, lambda _: None)


def network(arch: str) -> nn.Module:
    extra = {"aux_logits": False, "init_weights": True} if arch == "googlenet" else {}
    torch.manual_seed(0)
    return torchvision.models.get_model(arch, weights=None, num_classes=10, **extra)


@pytest.fixture(scope="module")
def models() -> dict[str, Classifier]:
    """Each architecture trained once per module, shared by the tests below."""
    return {}


def briefly_trained(arch: str, train: ImageSet, cache: dict[str, Classifier]) -> Classifier:
    if arch not in cache:
        model = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), network(arch))
        params = TrainParams(on="digits-train", epochs=1, lr=0.002 if arch == "convnext_tiny" else 0.01, augment=False)
        load_state(model, train_classifier(model, train, params, seed=0, device=torch.device("cpu"), progress=lambda _: None))
        cache[arch] = model.eval()
    return cache[arch]


@pytest.mark.parametrize("arch", per_arch(ARCHS))
def test_fx_and_eager_int8_have_faithful_twins(arch: str, digits32, models) -> None:
    train, images = digits32
    model = briefly_trained(arch, train, models)
    paths = [PTQParams(**FAST)] + ([PTQParams(method="eager", **FAST)] if arch in EAGER else [])
    for params in paths:
        int8 = ptq.apply(model, params, context(train))
        assert_faithful_twin(int8, images)
    if arch not in EAGER:
        with pytest.raises(CompressionError, match="method: eager cannot quantize"):
            ptq.apply(model, PTQParams(method="eager", **FAST), context(train))


@pytest.mark.parametrize("arch", per_arch(PT2E))
def test_pt2e_int8_graph_has_an_exact_twin(arch: str, digits32, models) -> None:
    """PT2E's converted graph (its q/dq reference form, before inductor compiles it: tens of seconds a model,
    measured in the benchmark) and its twin compute the same logits."""
    train, images = digits32
    model = briefly_trained(arch, train, models)

    def calibrate(prepared: nn.Module) -> None:
        with torch.no_grad():
            prepared(model.normalize(train.floats()[:64]))

    example = model.normalize(torch.zeros(2, 3, SIZE, SIZE))
    converted = PT2EPath().quantize(model.net, PTQParams(backend="pt2e"), calibrate, example).converted
    twin = model.with_net(pt2e_twin(converted, converted)).eval()  # the reference graph stands in for the kernels
    with torch.no_grad():
        reference = model.with_net(converted)(images)
        assert torch.equal(twin(images), reference)
        free = model.with_net(twin.net.twin)(images)  # the twin alone computes what the reference graph does
        assert torch.allclose(free, reference, atol=1e-3)
    assert float(twin_fidelity(twin, images).float().mean()) >= MIN_TWIN_AGREEMENT
    x = images[:8].clone().requires_grad_(True)
    assert torch.isfinite(torch.autograd.grad(twin(x).logsumexp(1).sum(), x)[0]).all()


@pytest.mark.parametrize("arch", per_arch(ARCHS))
def test_l1_pruning_then_int8_and_distillation_into_it(arch: str, digits32, models) -> None:
    train, images = digits32
    model = briefly_trained(arch, train, models)
    ctx = context(train)
    if arch in PRUNING_UNSUPPORTED:
        with pytest.raises(CompressionError, match="channel shuffle"):
            prune_channels(model, PruneParams(method="l1", ratio=0.5), ctx)
    else:
        pruned = prune_channels(model, PruneParams(method="l1", ratio=0.5), ctx)
        assert count_params(pruned.net) < 0.45 * count_params(model.net)
        assert count_macs(pruned, images[:1]) < 0.6 * count_macs(model, images[:1])
        assert_faithful_twin(ptq.apply(pruned, PTQParams(**FAST), ctx), images)
    width = 1.0 if arch in PRUNING_UNSUPPORTED else 0.5
    params = DistillParams(student={"arch": f"torchvision:{arch}", "kwargs": _kwargs(arch), "width": width}, epochs=1, batch_size=64)
    student = compression_steps.get("distill").apply(model, params, context(train.subset(torch.arange(128))))  # mechanics: 2 steps
    assert predictions(student, images).shape == (len(images),)
    if width < 1:
        assert count_params(student.net) < 0.45 * count_params(model.net)


def _kwargs(arch: str) -> dict:
    return {"num_classes": 10, **({"aux_logits": False, "init_weights": True} if arch == "googlenet" else {})}

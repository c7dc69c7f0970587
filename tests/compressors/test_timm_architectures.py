"""timm models (``arch: timm:NAME``) go through every compressor and the int8 protocol as torchvision's do.

Mechanics at 48x48 after one epoch on 256 digits, as in test_edge_architectures.py: FX int8 with a faithful
twin, PT2E's graph and its exact twin, L1 pruning then int8, distillation into a half-width timm student, and ONNX Runtime int8 with the
twin of its graph; then the attack protocol runs all three legs on the FX int8 model.
"""

from __future__ import annotations

import pytest
import torch
from int8_checks import assert_faithful_twin, per_arch

from robustgate.attacks.base import AttackSettings
from robustgate.attacks.protocol import MIN_TWIN_AGREEMENT, fake_quant_twin, robust_correct
from robustgate.attacks.run import predictions
from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.distill import DistillParams
from robustgate.compressors.int8.lockstep import twin_fidelity
from robustgate.compressors.int8.pt2e import PT2EPath
from robustgate.compressors.int8.twin import pt2e_twin
from robustgate.compressors.prune import PruneParams, prune_channels
from robustgate.compressors.ptq import PTQParams
from robustgate.compressors.size import count_params
from robustgate.data.digits import load_digits_domain
from robustgate.data.imageset import ImageSet
from robustgate.data.resize import to_model_geometry
from robustgate.errors import CompressionError, ModelError
from robustgate.models.architectures import build_network, model_code
from robustgate.models.classifier import Classifier, Normalize
from robustgate.models.state import load_state
from robustgate.models.train import train_classifier
from robustgate.spec.model import TrainParams

timm = pytest.importorskip("timm", reason="the timm extra is not installed: pip install 'robustgate[timm]'")

SIZE = 48
ARCHS = ["mobilenetv3_small_100", "efficientnet_lite0"]  # hard-swish and squeeze-excitation; ReLU6, no SE
FAST = {"observer": "minmax", "calibrate": {"on": "digits-train", "samples": 64}}
ptq = compression_steps.get("ptq")


@pytest.fixture(scope="module")
def digits48() -> tuple[ImageSet, torch.Tensor, torch.Tensor]:
    images, labels, classes = load_digits_domain("handwritten")
    data = ImageSet(to_model_geometry(images, (SIZE, SIZE), 3), labels, classes)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    test = data.subset(order[256:352])
    return data.subset(order[:256]), test.floats(), torch.as_tensor(test.labels)


def context(train: ImageSet) -> StepContext:
    return StepContext(lambda _: train, "digits-train", torch.zeros(2, 3, SIZE, SIZE), 0, lambda _: None)


def trained(arch: str, train: ImageSet) -> Classifier:
    torch.manual_seed(0)
    model = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), build_network(f"timm:{arch}", {"num_classes": 10}))
    params = TrainParams(on="digits-train", epochs=1, lr=0.01, augment=False)
    load_state(model, train_classifier(model, train, params, seed=0, device=torch.device("cpu"), progress=lambda _: None))
    return model.eval()


@pytest.mark.parametrize("arch", per_arch(ARCHS))
def test_a_timm_model_goes_through_every_compressor_and_the_protocol(arch: str, digits48) -> None:
    train, images, labels = digits48
    model, ctx = trained(arch, train), context(train)
    assert type(model.net).__module__.startswith("timm.")
    assert model_code(model.net, f"timm:{arch}") == {"timm": timm.__version__}  # its version stands for its code

    int8 = ptq.apply(model, PTQParams(**FAST), ctx)  # FX graph mode: timm's blocks trace
    assert_faithful_twin(int8, images)
    with pytest.raises(CompressionError, match="method: eager cannot quantize"):  # torchvision's quantizable twins only
        ptq.apply(model, PTQParams(method="eager", **FAST), ctx)

    def calibrate(prepared: torch.nn.Module) -> None:
        with torch.no_grad():
            prepared(model.normalize(train.floats()[:64]))

    example = model.normalize(torch.zeros(2, 3, SIZE, SIZE))
    converted = PT2EPath().quantize(model.net, PTQParams(backend="pt2e"), calibrate, example).converted  # torch.export
    pt2e = model.with_net(pt2e_twin(converted, converted)).eval()  # its q/dq reference graph stands in for the kernels
    with torch.no_grad():
        assert torch.equal(pt2e(images), model.with_net(converted)(images))
    assert float(twin_fidelity(pt2e, images).float().mean()) >= MIN_TWIN_AGREEMENT

    pruned = prune_channels(model, PruneParams(method="l1", ratio=0.5), ctx)
    assert count_params(pruned.net) < 0.45 * count_params(model.net)
    assert_faithful_twin(ptq.apply(pruned, PTQParams(**FAST), ctx), images)

    student = {"arch": f"timm:{arch}", "kwargs": {"num_classes": 10}, "width": 0.5}
    distilled = compression_steps.get("distill").apply(
        model, DistillParams(student=student, epochs=1, batch_size=64), context(train.subset(torch.arange(128)))
    )
    assert count_params(distilled.net) < 0.45 * count_params(model.net)
    assert predictions(distilled, images).shape == labels.shape

    ort = ptq.apply(model, PTQParams(backend="onnxruntime", **FAST), ctx)  # exported, quantized and run by ORT
    assert float(twin_fidelity(fake_quant_twin(ort, images[:2]), images).float().mean()) >= MIN_TWIN_AGREEMENT

    result = robust_correct("pgd", AttackSettings(8 / 255, "Linf", 3, None, 1), int8, model, images[:32], labels[:32],
                            seed=0, queries=20)
    assert result.legs == ("twin", "transfer", "gradient-free") and not result.unavailable


def test_a_timm_name_is_checked_without_importing_timm_and_misspellings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from robustgate.spec.factories import architecture_problem

    assert architecture_problem("timm:efficientnet_lite0") is None
    assert architecture_problem("timm:mobilenetv3_small_10") == (
        "unknown timm architecture 'mobilenetv3_small_10'; did you mean 'mobilenetv3_small_100'?"
    )
    with pytest.raises(ModelError, match="timm:mobilenetv3_small_100 does not accept kwargs"):
        build_network("timm:mobilenetv3_small_100", {"num_classes": 10, "no_such_option": 1})
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "timm" else find_spec(name, *args))
    assert architecture_problem("timm:efficientnet_lite0") == (
        "arch 'timm:efficientnet_lite0' needs timm, which is not installed here: pip install 'robustgate[timm]'"
    )

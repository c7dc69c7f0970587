"""L1 filter pruning really removes channels, keeps accuracy after fine-tuning, and reloads from the cache exactly."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import pytest
import torch
import torchvision
from pydantic import ValidationError
from tiny_cnn import build
from tiny_spec_edits import edit
from torch import nn
from torch.nn import functional as F

from robustgate.cache import ArtifactCache
from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.pipeline import BuiltModel, compress, measure
from robustgate.compressors.prune import PruneParams
from robustgate.compressors.ptq import PTQParams
from robustgate.compressors.size import count_macs, count_params
from robustgate.data.imageset import ImageSet
from robustgate.errors import CompressionError, SpecError
from robustgate.inference import predict_logits
from robustgate.models.classifier import Classifier, Normalize
from robustgate.spec import load_spec
from robustgate.spec.model import Step

prune = compression_steps.get("prune")
CPU = torch.device("cpu")


def classifier(net: nn.Module) -> Classifier:
    return Classifier(Normalize((0.5,) * 3, (0.25,) * 3), net).eval()


@pytest.fixture(scope="module")
def trained(trained_cnn: Classifier) -> Classifier:
    return trained_cnn


def context(train: ImageSet | None = None, size: int = 16) -> StepContext:
    def dataset(name: str) -> ImageSet:
        assert train is not None
        return train

    return StepContext(
        dataset=dataset, default_data="digits-train", example=torch.zeros(2, 3, size, size), seed=0, progress=lambda _: None
    )


def accuracy(model: Classifier, data: ImageSet) -> float:
    return float((predict_logits(model, data, CPU).argmax(1) == data.labels).float().mean())


def out_channels(net: nn.Module) -> dict[str, int]:
    return {name: m.weight.shape[0] for name, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def test_resnet18_loses_half_its_filters_for_real() -> None:
    torch.manual_seed(0)
    parent = classifier(torchvision.models.resnet18(num_classes=10))
    example = torch.zeros(2, 3, 32, 32)
    before = out_channels(parent.net)
    pruned = prune.apply(parent, PruneParams(method="l1", ratio=0.5), context(size=32))

    # Weight tensors shrink (no masks): every conv keeps half its filters, the head keeps its 10 logits.
    after = out_channels(pruned.net)
    assert after == {name: (10 if name == "fc" else width // 2) for name, width in before.items()}
    assert pruned.net.fc.in_features == 256 and pruned.net.layer1[0].conv1.in_channels == 32
    assert not any(name.endswith(("_mask", "_orig")) for name in pruned.net.state_dict())
    assert out_channels(parent.net) == before  # the parent is pruned on a copy

    # Parameters and MACs fall roughly as (1 - ratio)^2.
    assert count_params(pruned.net) < 0.3 * count_params(parent.net)
    assert count_macs(pruned, example) < 0.3 * count_macs(parent, example)

    # Residual adds (identity and downsample branches) still line up, forward and backward.
    images = torch.rand(4, 3, 32, 32)
    logits = pruned(images)
    assert logits.shape == (4, 10)
    F.cross_entropy(logits, torch.arange(4)).backward()
    assert pruned.net.layer2[0].downsample[0].weight.grad is not None


def test_pruned_and_finetuned_cnn_keeps_its_accuracy(trained: Classifier, digits: tuple[ImageSet, ImageSet]) -> None:
    train, test = digits
    params = PruneParams(method="l1", ratio=0.5, finetune={"on": "digits-train", "epochs": 2, "lr": 0.01})
    pruned = prune.apply(trained, params, context(train))
    baseline, kept = accuracy(trained, test), accuracy(pruned, test)
    # Measured on the 359 test digits: baseline 0.9889; pruned at 0.5 without fine-tuning 0.2089 (BN nets
    # need retraining, as Li et al. report); after 2 epochs at lr 0.01, 0.9861 (0.9415 at the default lr 1e-3).
    # The gate sits 5 points under the baseline, not 2: another CPU's kernels train other weights (a point or
    # two either way, benchmarks/bench_cross_cpu.py), and 5 points still tells recovery from the 0.21 of no fine-tuning.
    assert count_params(pruned.net) < 0.3 * count_params(trained.net)
    assert kept >= baseline - 0.05, (baseline, kept)


@pytest.mark.parametrize("finetune", [None, {"on": "digits-train", "epochs": 1}], ids=["pruned", "finetuned"])
def test_restore_rebuilds_the_identical_model_from_a_weights_only_state(
    trained: Classifier, digits: tuple[ImageSet, ImageSet], finetune: dict | None
) -> None:
    train, test = digits
    params = PruneParams(method="l1", ratio=0.5, finetune=finetune)
    parent_state = copy.deepcopy(trained.state_dict())
    built = prune.apply(trained, params, context(train))
    buffer = io.BytesIO()
    torch.save(prune.state(built), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    restored = prune.restore(trained, params, state, context(train))
    x = test.floats()[:128]
    with torch.inference_mode():
        assert torch.equal(built(x), restored(x))
    assert all(torch.equal(v, parent_state[k]) for k, v in trained.state_dict().items())  # fine-tuning a copy


def test_a_warm_cache_restores_the_pruned_model_through_the_pipeline(
    trained: Classifier, digits: tuple[ImageSet, ImageSet], tmp_path: Path
) -> None:
    train, test = digits
    ctx = context(train)
    parent = BuiltModel(trained, "parent", measure(trained, ctx.example), differentiable=True)
    steps = (Step("prune", PruneParams(method="l1", ratio=0.5, finetune={"on": "digits-train", "epochs": 1})),)
    cache = ArtifactCache(tmp_path)
    cold = compress(parent, steps, ctx, cache, {}, fingerprint=lambda name: train.fingerprint())
    warm = compress(parent, steps, ctx, cache, {}, fingerprint=lambda name: train.fingerprint())
    assert (cache.misses, cache.hits) == (1, 1)
    x = test.floats()[:128]
    with torch.inference_mode():
        assert torch.equal(cold.model(x), warm.model(x))
    assert cold.size == warm.size and cold.size.macs < parent.size.macs and cold.differentiable


def test_keep_leaves_a_layer_whole(trained: Classifier) -> None:
    pruned = prune.apply(trained, PruneParams(method="l1", ratio=0.5, keep=["4"]), context())
    assert out_channels(pruned.net) == {"0": 16, "4": 64, "8": 32, "13": 10}


def test_keep_on_a_residual_stem_keeps_every_channel_coupled_to_it() -> None:
    parent = classifier(torchvision.models.resnet18(num_classes=10))
    pruned = prune.apply(parent, PruneParams(method="l1", ratio=0.5, keep=["conv1"]), context(size=32))
    # conv1's channels are added to layer1's outputs, so those stay whole; layer1's inner convs are pruned.
    assert pruned.net.conv1.out_channels == 64 and pruned.net.layer1[0].conv2.out_channels == 64
    assert pruned.net.layer1[0].conv1.out_channels == 32 and pruned.net.layer2[0].conv1.out_channels == 64


def test_global_scope_ranks_all_channels_together(trained: Classifier) -> None:
    # 24 of the first layer's 32 channels made near-silent (their filters, BatchNorm and the next layer's weights on
    # them scaled by 1e-3): ranked across the network they are the weakest of all, where a per-layer cut takes 16
    # from every layer. (Without the planted channels, the widths a global cut keeps depend on the training's float
    # numerics: on one machine and thread count they came out as the per-layer cut's.)
    model = copy.deepcopy(trained)
    quiet = torch.arange(24)
    with torch.no_grad():
        for tensor in (model.net[0].weight, model.net[0].bias, model.net[1].weight, model.net[1].bias):
            tensor[quiet] *= 1e-3
        model.net[4].weight[:, quiet] *= 1e-3
    pruned = prune.apply(model, PruneParams(method="l1", ratio=0.5, scope="global"), context())
    widths = out_channels(pruned.net)
    assert widths["13"] == 10
    # Half of the 160 prunable filters go: the 24 quiet ones first, the rest across the other layers.
    assert widths["0"] + widths["4"] + widths["8"] == 80
    assert widths["0"] == 8
    layer = out_channels(prune.apply(model, PruneParams(method="l1", ratio=0.5), context()).net)
    assert (layer["0"], layer["4"], layer["8"]) == (16, 32, 32)


def test_prune_then_ptq_gives_a_running_int8_model(trained: Classifier, digits: tuple[ImageSet, ImageSet]) -> None:
    train, test = digits
    ctx = context(train)
    parent = BuiltModel(trained, "parent", measure(trained, ctx.example), differentiable=True)
    steps = (Step("prune", PruneParams(method="l1", ratio=0.5)), Step("ptq", PTQParams()))
    memo: dict[str, BuiltModel] = {}
    int8 = compress(parent, steps, ctx, ArtifactCache(None), memo, fingerprint=lambda name: train.fingerprint())
    pruned = next(built for built in memo.values() if built is not int8)
    convs = [m for m in int8.model.net.modules() if hasattr(m, "weight") and callable(m.weight)]
    assert convs and all(m.weight().dtype == torch.qint8 for m in convs)
    assert int8.model(test.floats()[:8]).shape == (8, 10)
    assert not int8.differentiable
    assert int8.size.macs == pruned.size.macs < parent.size.macs
    assert int8.size.bytes < 0.5 * pruned.size.bytes
    agree = (predict_logits(int8.model, test, CPU).argmax(1) == predict_logits(pruned.model, test, CPU).argmax(1))
    assert agree.float().mean() > 0.9


# -- misuse -------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5, -0.1])
def test_a_ratio_outside_the_open_unit_interval_is_a_validation_error(ratio: float) -> None:
    with pytest.raises(ValidationError, match="ratio"):
        PruneParams(method="l1", ratio=ratio)


def test_an_unknown_method_or_key_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="'l1'"):
        PruneParams(method="l2", ratio=0.5)
    with pytest.raises(ValidationError, match="extra"):
        PruneParams(method="l1", ratio=0.5, scop="global")


def test_a_spec_with_a_bad_prune_step_fails_validation_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "robustgate: 1\n"
        "model: {arch: torchvision:resnet18, kwargs: {num_classes: 10}, weights: train, train: {on: train},\n"
        "        input: {size: [32, 32]}}\n"
        "datasets: {train: {builtin: digits, domain: handwritten}}\n"
        "variants:\n"
        "  pruned-{ratio}: {prune: {method: l1, ratio: [0.25, 0.5], keep: [conv1]}}\n"
        "  bad: {prune: {method: l2, ratio: 1.0}}\n"
        "contracts:\n"
        "  - accuracy: {on: train, min: 0.5}\n"
    )
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "spec.yaml:7: variants.bad.prune.method: input should be 'l1' (got 'l2')" in str(info.value)
    assert "spec.yaml:7: variants.bad.prune.ratio: input should be less than 1 (got 1.0)" in str(info.value)
    path.write_text(edit(path.read_text(), "  bad: {prune: {method: l2, ratio: 1.0}}\n", ""))
    variants = load_spec(path).variants
    assert [v.steps[0].params.ratio for v in variants.values()] == [0.25, 0.5]
    assert variants["pruned-0.5"].steps[0].params.keep == ("conv1",)


def test_an_unknown_keep_name_suggests_the_closest() -> None:
    parent = classifier(torchvision.models.resnet18(num_classes=10))
    with pytest.raises(CompressionError, match=r"keep names 'layer1.0.con1'.*did you mean 'layer1.0.conv1'\?"):
        prune.apply(parent, PruneParams(method="l1", ratio=0.5, keep=["layer1.0.con1"]), context(size=32))


def test_a_ratio_that_would_empty_a_layer_is_refused(trained: Classifier) -> None:
    # Torch-Pruning keeps floor(C x (1 - ratio)) channels; at 0 it silently leaves the layer whole.
    with pytest.raises(CompressionError) as info:
        prune.apply(trained, PruneParams(method="l1", ratio=0.97), context())
    assert "every output channel of '0' (32 channels)" in str(info.value)
    assert "ratio <= 0.968" in str(info.value)
    assert prune.apply(trained, PruneParams(method="l1", ratio=0.968), context()).net[0].out_channels == 1
    with pytest.raises(CompressionError, match="with scope: global, ratio 0.99 ranks every output channel"):
        prune.apply(trained, PruneParams(method="l1", ratio=0.99, scope="global"), context())


class PixelShuffleNet(nn.Module):
    """pixel_shuffle moves channels into space: Torch-Pruning's index mapping fails on it."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Conv2d(3, 16, 3, padding=1)
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(F.pixel_shuffle(self.up(x), 2)).mean((2, 3)))


class HardCodedView(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).view(-1, 16 * 16 * 16))


class NoAutograd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = build()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.body(x)


@pytest.mark.parametrize(
    ("net", "message"),
    [
        (PixelShuffleNet, r"Torch-Pruning cannot trace or prune PixelShuffleNet: IndexError"),
        (HardCodedView, r"the pruned network fails on the example input: RuntimeError"),
        (NoAutograd, r"found no channel it can remove in NoAutograd"),
    ],
)
def test_a_model_pruning_cannot_handle_gives_one_clear_error(net: type[nn.Module], message: str) -> None:
    with pytest.raises(CompressionError, match=message) as info:
        prune.apply(classifier(net()), PruneParams(method="l1", ratio=0.5), context())
    assert info.value.hint


def test_an_int8_model_cannot_be_pruned(trained: Classifier, digits: tuple[ImageSet, ImageSet]) -> None:
    calibrate = PTQParams(calibrate={"on": "digits-train", "samples": 64})
    int8 = compression_steps.get("ptq").apply(trained, calibrate, context(digits[0]))
    with pytest.raises(CompressionError, match="QuantizedNet has no floating-point weights to prune") as info:
        prune.apply(int8, PruneParams(method="l1", ratio=0.5), context())
    assert "put prune before ptq" in info.value.hint


def test_fine_tuning_on_a_set_with_other_classes_is_refused(trained: Classifier, digits: tuple[ImageSet, ImageSet]) -> None:
    train = digits[0]
    three = train.subset(torch.nonzero(train.labels < 3).flatten())
    three = ImageSet(three.images, three.labels, three.classes[:3])
    params = PruneParams(method="l1", ratio=0.5, finetune={"on": "three"})
    with pytest.raises(CompressionError, match="fine-tuning set 'three' has 3 classes but the model outputs 10 logits"):
        prune.apply(trained, params, context(three))


def test_a_cached_state_of_another_structure_is_refused(trained: Classifier) -> None:
    state = prune.state(prune.apply(trained, PruneParams(method="l1", ratio=0.25), context()))
    with pytest.raises(CompressionError, match=r"'0.bias' is \[24\] in the cache but \[16\] rebuilt"):
        prune.restore(trained, PruneParams(method="l1", ratio=0.5), state, context())


# -- end to end ---------------------------------------------------------------



@pytest.mark.cold_cache  # asserts the prune step's progress lines
def test_a_pruned_variant_runs_through_pytest(tiny_project: pytest.Pytester, write_spec, junit_properties) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    variant = "  pruned: {prune: {method: l1, ratio: 0.5, finetune: {on: digits-train, epochs: 1}}}\n"
    write_spec(edit(spec, "variants:\n", "variants:\n" + variant), "tiny.yaml")
    result = tiny_project.runpytest("--junitxml=junit.xml", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*compressing: prune*", "*prune: fine-tuning epoch 1/1*"])
    # The tiny net at half width (8 and 16 filters) after one epoch at lr 1e-3 really is worse (handwritten
    # 0.26 against the baseline's 0.91): its two items fail with verdicts, as a gate should, not with errors.
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["*robustgate contract broken: pruned :: accuracy[[]handwritten]*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    cases = junit_properties(tiny_project.path / "junit.xml")
    pruned = [props for name, props in cases.items() if "pruned" in name]
    assert len(pruned) == 2
    assert all(0.0 < float(p["robustgate.params_ratio"]) < 0.5 for p in pruned)
    assert all(float(p["robustgate.macs_ratio"]) < 0.5 for p in pruned)

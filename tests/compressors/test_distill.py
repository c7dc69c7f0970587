"""Knowledge distillation trains a real, narrower student from the teacher, caches it exactly, and composes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from tiny_cnn import build
from tiny_spec_edits import edit
from torch import nn

from robustgate.cache import ArtifactCache
from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.distill import DistillParams
from robustgate.compressors.pipeline import BuiltModel, compress, measure
from robustgate.compressors.ptq import PTQParams
from robustgate.compressors.size import count_params
from robustgate.data.imageset import ImageSet
from robustgate.errors import CompressionError, ModelError, SpecError
from robustgate.inference import predict_logits
from robustgate.models.classifier import Classifier, Normalize
from robustgate.spec import load_spec
from robustgate.spec.model import Step

distill = compression_steps.get("distill")
CPU = torch.device("cpu")


CNN = "tiny_cnn:build"  # the teacher's architecture; students are narrowed copies of it


def student(width: float = 0.5, **kwargs) -> dict:
    return {"arch": CNN, "kwargs": {"num_classes": 10, "width": 32}, "width": width, **kwargs}  # the teacher's net


@pytest.fixture(scope="module")
def teacher(trained_cnn: Classifier) -> Classifier:
    return trained_cnn


def context(train: ImageSet | None = None, default_data: str | None = "digits-train") -> StepContext:
    def dataset(name: str) -> ImageSet:
        assert train is not None
        return train

    return StepContext(
        dataset=dataset, default_data=default_data, example=torch.zeros(2, 3, 16, 16), seed=0, progress=lambda _: None
    )


def accuracy(model: Classifier, data: ImageSet) -> float:
    return float((predict_logits(model, data, CPU).argmax(1) == data.labels).float().mean())


def out_channels(net: nn.Module) -> dict[str, int]:
    return {name: m.weight.shape[0] for name, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def test_a_distilled_student_matches_the_same_student_trained_on_labels_alone(
    teacher: Classifier, digits: tuple[ImageSet, ImageSet]
) -> None:
    train, test = digits
    common = {"student": student(0.5), "epochs": 8, "lr": 0.01}
    distilled = distill.apply(teacher, DistillParams(**common, alpha=0.9, temperature=4.0), context(train))
    alone = distill.apply(teacher, DistillParams(**common, alpha=0.0), context(train))
    from_teacher_only = distill.apply(teacher, DistillParams(**common, alpha=1.0), context(train))
    # Measured on the 359 test digits (teacher 0.9889, 4 epochs): the width-0.5 student (a quarter of the
    # teacher's parameters) after 8 epochs at lr 0.01 reaches 0.9916 distilled (alpha 0.9, T 4) against
    # 0.9861 on labels alone (alpha 0): 2 images better at seed 0. At seeds 1/2/3 the pairs were
    # 0.9889/0.9916, 0.9861/0.9944, 0.9916/0.9889 (distilled/alone): on this easy set distillation matches
    # the label-only student within a point, it does not reliably beat it. At width 0.25 and 8 epochs the
    # label-only student was ahead (0.9721 against 0.9471 at T 4, 0.9694 at T 2). So: matches, within 2 points.
    # Another CPU's kernels (or thread count) train other weights, as another seed does: the gates keep 3 and
    # 4 points of margin below those numbers (benchmarks/bench_cross_cpu.py), not the 1-2 a seed moves them.
    a_distilled, a_alone, a_teacher_only = accuracy(distilled, test), accuracy(alone, test), accuracy(from_teacher_only, test)
    assert a_distilled >= a_alone - 0.03, (a_distilled, a_alone)
    assert a_distilled >= 0.95, a_distilled
    # alpha 1 drops the labels: what the student knows then comes from the teacher's outputs alone (0.9833).
    assert a_teacher_only >= 0.9, a_teacher_only
    assert count_params(distilled.net) < 0.3 * count_params(teacher.net)


def test_width_really_narrows_the_student(teacher: Classifier, digits: tuple[ImageSet, ImageSet]) -> None:
    few = digits[0].subset(torch.arange(128))
    full = distill.apply(teacher, DistillParams(student=student(1.0), epochs=1), context(few))
    half = distill.apply(teacher, DistillParams(student=student(0.5), epochs=1), context(few))
    assert out_channels(full.net) == {"0": 32, "4": 64, "8": 64, "13": 10}
    assert out_channels(half.net) == {"0": 16, "4": 32, "8": 32, "13": 10}  # the logits layer keeps its classes
    assert count_params(half.net) < 0.3 * count_params(full.net)
    assert not any(name.endswith(("_mask", "_orig")) for name in half.net.state_dict())
    # The student sits behind the teacher's normalisation, on a copy of it.
    assert torch.equal(half.normalize.mean, teacher.normalize.mean) and half.normalize is not teacher.normalize


def test_restore_rebuilds_the_identical_student_from_a_weights_only_state(
    teacher: Classifier, digits: tuple[ImageSet, ImageSet]
) -> None:
    train, test = digits
    params = DistillParams(student=student(0.5), epochs=1)
    built = distill.apply(teacher, params, context(train.subset(torch.arange(256))))
    buffer = io.BytesIO()
    torch.save(distill.state(built), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    restored = distill.restore(teacher, params, state, context())
    x = test.floats()[:128]
    with torch.inference_mode():
        assert torch.equal(built(x), restored(x))
    with pytest.raises(CompressionError, match=r"'0.bias' is \[16\] in the cache but \[32\] rebuilt") as info:
        distill.restore(teacher, DistillParams(student=student(1.0), epochs=1), state, context())
    assert "delete the cache folder" in info.value.hint


def test_distill_then_ptq_gives_a_running_int8_student(
    teacher: Classifier, digits: tuple[ImageSet, ImageSet], tmp_path: Path
) -> None:
    train, test = digits
    ctx = context(train)
    parent = BuiltModel(teacher, "parent", measure(teacher, ctx.example), differentiable=True)
    steps = (
        Step("distill", DistillParams(student=student(0.5), epochs=3, lr=0.01)),
        Step("ptq", PTQParams(calibrate={"on": "digits-train", "samples": 64})),
    )
    memo: dict[str, BuiltModel] = {}
    cache = ArtifactCache(tmp_path)
    int8 = compress(parent, steps, ctx, cache, memo, fingerprint=lambda name: train.fingerprint())
    fp32 = next(built for built in memo.values() if built is not int8)
    assert fp32.differentiable and not int8.differentiable
    assert fp32.size.params < 0.3 * parent.size.params and fp32.size.macs < parent.size.macs
    assert int8.size.bytes < 0.5 * fp32.size.bytes
    assert int8.model(test.floats()[:8]).shape == (8, 10)
    agree = predict_logits(int8.model, test, CPU).argmax(1) == predict_logits(fp32.model, test, CPU).argmax(1)
    assert agree.float().mean() > 0.9
    # A second session restores both steps from the cache, to the same outputs.
    warm = compress(parent, steps, ctx, cache, {}, fingerprint=lambda name: train.fingerprint())
    assert cache.hits == 2
    x = test.floats()[:64]
    with torch.inference_mode():
        assert torch.equal(int8.model(x), warm.model(x))


def test_an_int8_teacher_only_needs_forward_passes(teacher: Classifier, digits: tuple[ImageSet, ImageSet]) -> None:
    few = digits[0].subset(torch.arange(128))
    ctx = context(few)
    parent = BuiltModel(teacher, "parent", measure(teacher, ctx.example), differentiable=True)
    steps = (Step("ptq", PTQParams(calibrate={"on": "x", "samples": 64})), Step("distill", DistillParams(student=student(0.5), epochs=1)))
    memo: dict[str, BuiltModel] = {}
    built = compress(parent, steps, ctx, ArtifactCache(None), memo, fingerprint=lambda name: few.fingerprint())
    assert built.model(few.floats()[:4]).shape == (4, 10)
    # The student is an fp32 network again: attacks must treat it as differentiable.
    int8 = next(b for b in memo.values() if b is not built)
    assert not int8.differentiable and built.differentiable
    x = few.floats()[:4].requires_grad_(True)
    assert torch.autograd.grad(built.model(x).sum(), x)[0].abs().sum() > 0


# -- misuse -------------------------------------------------------------------


def test_a_student_with_another_class_count_is_refused(teacher: Classifier) -> None:
    params = DistillParams(student=student(0.5, kwargs={"num_classes": 5}))
    with pytest.raises(CompressionError, match=f"the student {CNN} outputs 5 logits but the teacher outputs 10") as info:
        distill.apply(teacher, params, context())
    assert "num_classes: 10" in info.value.hint


def test_no_training_data_is_refused(teacher: Classifier) -> None:
    with pytest.raises(CompressionError, match="distill needs training images") as info:
        distill.apply(teacher, DistillParams(student=student()), context(default_data=None))
    assert "on: DATASET" in info.value.hint


def test_a_training_set_with_other_classes_is_refused(teacher: Classifier, digits: tuple[ImageSet, ImageSet]) -> None:
    train = digits[0]
    three = train.subset(torch.nonzero(train.labels < 3).flatten())
    three = ImageSet(three.images, three.labels, three.classes[:3])
    with pytest.raises(CompressionError, match="training set 'three' has 3 classes but the teacher outputs 10 logits"):
        distill.apply(teacher, DistillParams(student=student(), on="three"), context(three))


@pytest.mark.parametrize("width", [0.0, -0.5, 1.5])
def test_a_width_outside_zero_one_is_a_validation_error(width: float) -> None:
    with pytest.raises(ValidationError, match="width"):
        DistillParams(student=student(width))


@pytest.mark.parametrize(
    ("key", "value"), [("temperature", 0.0), ("alpha", 1.5), ("epochs", 0), ("lr", 0.0), ("batch_size", 0)]
)
def test_out_of_range_training_settings_are_validation_errors(key: str, value: float) -> None:
    with pytest.raises(ValidationError, match=key):
        DistillParams(student=student(), **{key: value})


def test_a_width_that_would_empty_a_layer_is_refused(teacher: Classifier) -> None:
    message = r"cannot narrow the student to width 0.01: it would remove every output channel of '8' \(64 channels\)"
    with pytest.raises(CompressionError, match=message) as info:
        distill.apply(teacher, DistillParams(student=student(0.01)), context())
    assert "larger width" in info.value.hint


def test_an_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"unknown torchvision architecture 'resnet19'.*did you mean 'resnet18'"):
        DistillParams(student={"arch": "torchvision:resnet19"})
    parent = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), build()).eval()
    with pytest.raises(ModelError, match="cannot import 'no_such_package' for arch 'no_such_package:build'"):
        distill.apply(parent, DistillParams(student={"arch": "no_such_package:build"}), context())


def test_a_spec_with_a_bad_distill_step_fails_validation_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "robustgate: 1\n"
        "model: {arch: torchvision:resnet18, kwargs: {num_classes: 10}, weights: train, train: {on: train},\n"
        "        input: {size: [32, 32]}}\n"
        "datasets: {train: {builtin: digits, domain: handwritten}}\n"
        "variants:\n"
        "  student: {distill: {student: {arch: torchvision:resnet18, kwargs: {num_classes: 10}, width: 0.5}}}\n"
        "  bad: {distill: {student: {arch: torchvision:resnet19, width: 0}, alpha: 2}}\n"
        "contracts:\n"
        "  - accuracy: {on: train, min: 0.5}\n"
    )
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "spec.yaml:7: variants.bad.distill.student.width: input should be greater than 0" in str(info.value)
    assert "spec.yaml:7: variants.bad.distill.alpha" in str(info.value)
    assert "resnet19" in str(info.value)
    path.write_text(edit(path.read_text(), "  bad: {distill: {student: {arch: torchvision:resnet19, width: 0}, alpha: 2}}\n", ""))
    params = load_spec(path).variants["student"].steps[0].params
    assert (params.student.width, params.alpha, params.temperature, params.on) == (0.5, 0.9, 4.0, None)


# -- end to end ---------------------------------------------------------------



@pytest.mark.cold_cache  # asserts the distill step's progress lines
def test_a_distilled_variant_runs_through_pytest(tiny_project: pytest.Pytester, write_spec, junit_properties) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    variant = '  student: {distill: {student: {arch: "tinynet:build", kwargs: {num_classes: 10}, width: 0.5}, epochs: 2}}\n'
    write_spec(edit(spec, "variants:\n", "variants:\n" + variant), "tiny.yaml")
    result = tiny_project.runpytest("--junitxml=junit.xml", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*compressing: distill*", "*distill: epoch 2/2*"])
    outcomes = result.parseoutcomes()
    assert "errors" not in outcomes and "error" not in outcomes, outcomes
    # The tiny net at half width (8 and 16 filters) after 2 epochs at the default lr 1e-3 is far from trained
    # (handwritten 0.16 against the baseline's 0.91): its two items fail with verdicts, as a gate should.
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["*robustgate contract broken: student :: accuracy[[]handwritten]*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    cases = junit_properties(tiny_project.path / "junit.xml")
    students = [props for name, props in cases.items() if "student" in name]
    assert len(students) == 2
    assert all(0.0 < float(p["robustgate.params_ratio"]) < 0.5 for p in students)


def test_a_student_can_start_from_imagenet_weights_whose_file_enters_the_cache_key(
    teacher: Classifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision

    from robustgate.models.pretrained import checkpoint_path, resolve

    arch = "shufflenet_v2_x0_5"  # a small torchvision classifier with an `fc` head
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    params = DistillParams(student={"arch": arch, "kwargs": {"num_classes": 10}, "weights": "imagenet"}, epochs=1)
    with pytest.raises(ModelError, match=rf"(?s)is not on this machine.*robustgate fetch-weights {arch}"):
        distill._student(teacher, params, context(), 10)
    absent = distill.external_inputs(params)
    torch.manual_seed(1)
    saved = torchvision.models.get_model(arch, weights=None).state_dict()  # stand-in ImageNet weights (1000 classes)
    path = checkpoint_path(resolve(arch, "imagenet"))
    path.parent.mkdir(parents=True)
    torch.save(saved, path)
    built = distill._student(teacher, params, context(), 10).net.state_dict()
    assert built["fc.weight"].shape == (10, 1024)  # a new head for the teacher's classes
    assert all(torch.equal(built[key], tensor) for key, tensor in saved.items() if not key.startswith("fc."))
    present = distill.external_inputs(params)
    torch.save({key: tensor + 1 for key, tensor in saved.items()}, path)
    assert len({absent, present, distill.external_inputs(params)}) == 3  # another file is another student
    assert distill.external_inputs(DistillParams(student=student())) == ()
    path.unlink()  # restoring loads the cached state into the architecture: the weights file is not needed
    restored = distill.restore(teacher, params, {"state_dict": built}, context()).net.state_dict()
    assert all(torch.equal(restored[key], tensor) for key, tensor in built.items())
    with pytest.raises(ValidationError, match="student weights: 'student.pth' is not torchvision's"):
        DistillParams(student={"arch": arch, "weights": "student.pth"})
    with pytest.raises(ValidationError, match="is not a weights entry of resnet18"):
        DistillParams(student={"arch": "resnet18", "weights": "IMAGENET1K_V9"})

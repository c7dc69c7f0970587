"""`device: cuda` on a GPU: where each model kind runs, training, distillation, attacks, corruptions and latency.

Every test here is marked ``cuda`` and skipped, saying so, where torch sees no GPU (tests/conftest.py);
scripts/gpu_check.sh runs them on one. What a GPU changes, and the tolerances that follow (README, "device: cuda"):

- Evaluating the same fp32 weights: cuDNN's convolutions sum in other orders than the CPU's, so a logit moves in its
  last bits and an image at a near tie may change class: the predictions agree on at least 99.5% of the images.
- Training and distillation: the weights differ (other sums, and the GPU's own dropout generator), so a model trained
  on the GPU reaches the CPU's accuracy within 5 points, not to the bit.
- Corruptions made on the GPU draw from its own generator: other, equally seeded pixels. Their damage (the mean
  absolute change of a pixel) stays within 15% of the CPU's.
- int8 models run on the CPU whatever the device (torch's int8 kernels are the CPU's); their fake-quant twin too,
  since it must follow those kernels. The fp32 parent's transfer attack runs on the GPU.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tiny_spec_edits import edit

from robustgate.attacks import AttackSettings
from robustgate.attacks.protocol import robust_correct
from robustgate.cache import ArtifactCache
from robustgate.data.corruptions import corrupt, corruptions
from robustgate.data.imageset import ImageSet
from robustgate.evaluation import SpecEvaluation
from robustgate.inference import predict_logits
from robustgate.spec import load_spec
from robustgate.spec.model import BASELINE

from conftest import TINY_NET

pytestmark = pytest.mark.cuda

GPU = torch.device("cuda")
SAME_WEIGHTS_AGREEMENT = 0.995  # share of images whose class the CPU and the GPU agree on, for the same weights
TRAINED_TOLERANCE = 0.05  # accuracy of a model trained on the GPU against the one trained on the CPU
DAMAGE_TOLERANCE = 0.15  # relative, a corruption's mean pixel change on the GPU against the CPU's

SPEC = """\
robustgate: 1
name: on-{device}
seed: 0
device: {device}
model: {{arch: tinynet:build, kwargs: {{num_classes: 10, width: 32}}, weights: train,
        train: {{on: train, epochs: 4, lr: 0.01}}, input: {{size: [16, 16]}}}}
datasets:
  train: {{builtin: digits, domain: handwritten, part: train}}
  test: {{builtin: digits, domain: handwritten, part: test}}
variants:
  pruned: {{prune: {{method: l1, ratio: 0.25, finetune: {{on: train, epochs: 1}}}}}}
  distilled: {{distill: {{student: {{arch: tinynet:build, kwargs: {{num_classes: 10, width: 16}}}}, epochs: 4, lr: 0.01}}}}
  int8: {{ptq: {{backend: x86, calibrate: {{on: train, samples: 128}}}}}}
contracts:
  - accuracy: {{on: test, min: 0.5}}
"""


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cuda-specs")
    (folder / "tinynet.py").write_text(TINY_NET)
    paths = {}
    for device in ("cpu", "cuda"):
        paths[device] = folder / f"{device}.yaml"
        paths[device].write_text(SPEC.format(device=device))
    return paths


@pytest.fixture(scope="module")
def evaluations(specs: dict[str, Path]) -> Iterator[dict[str, SpecEvaluation]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(specs["cpu"].parent))  # tinynet
        sys.modules.pop("tinynet", None)
        yield {device: SpecEvaluation.build(load_spec(path), ArtifactCache(None)) for device, path in specs.items()}
    sys.modules.pop("tinynet", None)  # later tests import their own tinynet.py (see tests/test_cold_cost.py)


def accuracy(evaluation: SpecEvaluation, variant: str) -> float:
    logits = evaluation.predictions.logits(variant, "test")
    return float((logits.argmax(1) == evaluation.predictions.labels("test")).float().mean())


def test_fp32_models_are_evaluated_on_the_gpu_and_int8_models_on_the_cpu(evaluations) -> None:
    models = evaluations["cuda"].models
    for variant in (BASELINE, "pruned", "distilled", "int8"):
        built = models.model(variant)
        copy, device = models.evaluation_copy(variant, built)
        expected = "cpu" if variant == "int8" else "cuda"
        assert device.type == expected, variant
        assert {p.device.type for p in copy.parameters()} <= {expected}, variant
        # the built model, which the cache stores and compressors read, stays on the CPU
        assert {p.device.type for p in built.model.parameters()} <= {"cpu"}, variant
        logits = evaluations["cuda"].predictions.logits(variant, "test")
        assert logits.device.type == "cpu" and torch.isfinite(logits).all(), variant


def test_training_fine_tuning_and_distillation_on_the_gpu_learn_as_on_the_cpu(evaluations) -> None:
    for variant in (BASELINE, "pruned", "distilled"):
        on_cpu, on_gpu = accuracy(evaluations["cpu"], variant), accuracy(evaluations["cuda"], variant)
        assert on_gpu > 0.8, variant
        assert on_gpu == pytest.approx(on_cpu, abs=TRAINED_TOLERANCE), variant


def test_fp32_models_compute_in_full_fp32_and_the_same_bits_every_time_on_the_gpu(evaluations) -> None:
    evaluation = evaluations["cuda"]
    model, device = evaluation.models.evaluation_copy(BASELINE, evaluation.models.model(BASELINE))
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32  # not TF32's 10 bits
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    data = evaluation.datasets["test"]
    assert torch.equal(predict_logits(model, data, device), predict_logits(model, data, device))


def test_the_same_weights_predict_the_same_classes_on_cpu_and_gpu(evaluations) -> None:
    model = evaluations["cpu"].models.model(BASELINE).model
    data = evaluations["cpu"].datasets["test"]
    on_cpu = predict_logits(model, data, torch.device("cpu")).argmax(1)
    on_gpu = predict_logits(copy.deepcopy(model).to(GPU), data, GPU).argmax(1)
    assert float((on_cpu == on_gpu).float().mean()) >= SAME_WEIGHTS_AGREEMENT


def test_attacks_run_on_the_gpu_and_score_int8_models_on_the_cpu(evaluations) -> None:
    evaluation = evaluations["cuda"]
    models = evaluation.models
    data = evaluation.datasets["test"].subset(torch.arange(128))
    images, labels = data.floats(), data.labels
    settings = AttackSettings(4 / 255, "Linf", 10, None, 1)
    fp32, device = models.evaluation_copy(BASELINE, models.model(BASELINE))
    assert device.type == "cuda"
    white_box = robust_correct("pgd", settings, fp32, None, images, labels, seed=0, queries=50)
    assert white_box.legs == ("white-box",) and white_box.correct.device.type == "cpu"
    int8, int8_device = models.evaluation_copy("int8", models.model("int8"))
    assert int8_device.type == "cpu"
    protocol = robust_correct("pgd", settings, int8, fp32, images, labels, seed=0, queries=50)
    assert protocol.legs == ("twin", "transfer", "gradient-free") and protocol.unavailable == {}
    clean = int((evaluation.predictions.logits("int8", "test")[:128].argmax(1) == labels).sum())
    assert int(protocol.correct.sum()) < clean  # PGD at 4/255 breaks some digits
    # the same weights attacked on the CPU and on the GPU: about as many digits broken
    on_cpu_model = evaluations["cpu"].models.model(BASELINE).model
    on_cpu = robust_correct("pgd", settings, on_cpu_model, None, images, labels, seed=0, queries=50)
    on_gpu = robust_correct("pgd", settings, copy.deepcopy(on_cpu_model).to(GPU), None, images, labels, seed=0, queries=50)
    assert float(on_gpu.correct.float().mean()) == pytest.approx(float(on_cpu.correct.float().mean()), abs=0.05)


@pytest.mark.parametrize("name", corruptions.names())
def test_every_corruption_runs_on_gpu_tensors_with_the_cpus_damage(name: str) -> None:
    clean = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    fn = corruptions.get(name)
    on_cpu = fn(clean.clone(), 3, torch.Generator().manual_seed(0))
    on_gpu = fn(clean.to(GPU), 3, torch.Generator(GPU).manual_seed(0))
    assert on_gpu.device.type == "cuda" and on_gpu.shape == clean.shape and on_gpu.dtype == clean.dtype
    assert float(on_gpu.min()) >= 0.0 and float(on_gpu.max()) <= 1.0
    damage_cpu = float((on_cpu - clean).abs().mean())
    damage_gpu = float((on_gpu.cpu() - clean).abs().mean())
    assert damage_gpu == pytest.approx(damage_cpu, rel=DAMAGE_TOLERANCE, abs=0.005)


def test_corrupt_on_the_gpu_gives_the_same_cpu_set_every_time() -> None:
    pixels = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    clean = ImageSet(pixels, torch.zeros(20, dtype=torch.int64), ("a",))
    for name in ("gaussian_noise", "glass_blur", "spatter", "jpeg_compression", "pixelate"):
        first = corrupt(clean, name, 3, seed=0, device=GPU)
        assert first.images.device.type == "cpu" and first.images.dtype == torch.uint8
        assert torch.equal(first.images, corrupt(clean, name, 3, seed=0, device=GPU).images), name


def test_a_gpu_spec_runs_end_to_end_and_times_latency_on_the_cpu(tiny_project: pytest.Pytester, write_spec) -> None:
    """Contracts of every kind on a `device: cuda` spec; latency is timed on the CPU, where the edge model runs."""
    spec = edit((tiny_project.path / "robustness_specs" / "tiny.yaml").read_text(), "seed: 0\n", "seed: 0\ndevice: cuda\n")
    spec += (
        "  - attack: {kind: pgd, eps: 2/255, on: handwritten, samples: 64, steps: 5, queries: 20, max_drop: 0.3}\n"
        "  - corruptions: {on: handwritten, suite: [gaussian_noise, pixelate, spatter], severities: [3], max_relative_mce: 3}\n"
        "  - latency: {batch_size: 1, p90_ms: 1000, min_queries: 20}\n"
    )
    write_spec(spec, "tiny.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-report=out")
    result.assert_outcomes(passed=7)
    items = json.loads((tiny_project.path / "out" / "results.json").read_text())["items"]
    timed = [item for item in items if item["kind"] == "latency"]
    assert len(timed) == 2 and all("timed on the CPU" in " ".join(item["notes"]) for item in timed)

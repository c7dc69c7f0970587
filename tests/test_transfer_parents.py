"""Which models' adversarial images are kept for a transfer leg: the differentiable parents of the spec's variants."""

from __future__ import annotations

from pathlib import Path

from robustgate.cache import ArtifactCache
from robustgate.evaluation import SpecEvaluation
from robustgate.spec import load_spec

SPEC = """\
robustgate: 1
model: {arch: torchvision:resnet18, kwargs: {num_classes: 10}, weights: train, train: {on: train},
        input: {size: [32, 32]}}
datasets: {train: {builtin: digits, domain: handwritten}}
variants:
  pruned: {prune: {method: l1, ratio: 0.25}}
  pruned-int8: {prune: {method: l1, ratio: 0.25}, ptq: {backend: x86}}
  other-pruned: {prune: {method: l1, ratio: 0.5}}
contracts:
  - accuracy: {on: train, min: 0.5}
"""


def test_the_parents_of_int8_variants_are_read_off_the_steps(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    models = SpecEvaluation.build(load_spec(path), ArtifactCache(None)).models
    # pruned-int8's transfer leg attacks the model its ptq step quantized: the one `pruned` also is
    assert models.is_transfer_parent("pruned")
    assert not models.is_transfer_parent("other-pruned")  # another ratio, another model
    assert not models.is_transfer_parent("baseline")  # no variant quantizes the baseline itself
    assert models.transfer_parent("pruned-int8") == "pruned"
    assert models.transfer_parent("pruned") is None and models.transfer_parent("baseline") is None  # autograd
    path.write_text(SPEC.replace("  other-pruned:", "  int8: {ptq: {backend: x86}}\n  other-pruned:"))
    models = SpecEvaluation.build(load_spec(path), ArtifactCache(None)).models
    assert models.is_transfer_parent("baseline") and models.transfer_parent("int8") == "baseline"

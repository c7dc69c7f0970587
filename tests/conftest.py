"""Fixtures shared by the compressor and attack tests: the digits at 16x16 and the tiny CNN trained on them."""

from __future__ import annotations

import pytest
import torch
from tiny_cnn import build

from robustgate.data.digits import load_digits_domain
from robustgate.data.imageset import ImageSet
from robustgate.data.resize import to_model_geometry
from robustgate.data.splits import stratified_part
from robustgate.models.classifier import Classifier, Normalize
from robustgate.models.train import train_classifier
from robustgate.spec.model import TrainParams


@pytest.fixture(scope="session")
def digits() -> tuple[ImageSet, ImageSet]:
    """The handwritten digits at 16x16, split into the train and test parts a spec's `part:` gives."""
    images, labels, classes = load_digits_domain("handwritten")
    full = ImageSet(to_model_geometry(images, (16, 16), 3), labels, classes)
    return full.subset(stratified_part(full.labels, "train", 0.8, 0)), full.subset(stratified_part(full.labels, "test", 0.8, 0))


@pytest.fixture(scope="session")
def trained_cnn(digits: tuple[ImageSet, ImageSet]) -> Classifier:
    """The tiny CNN at width 32 trained on the digits (0.9889 on the test part); compressors copy it, never change it."""
    torch.manual_seed(0)
    model = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), build(width=32)).eval()
    params = TrainParams(on="digits-train", epochs=4, lr=0.01, augment=False)
    model.load_state_dict(train_classifier(model, digits[0], params, seed=0, device=torch.device("cpu"), progress=lambda _: None))
    return model.eval()


# The bad-spec corpus is read by tests/spec/test_bad_specs.py; pytest itself must not collect it as specs.
collect_ignore_glob = ["bad_specs/*"]

"""Fixtures for robustgate's own tests: a tiny real CNN, spec files that use it, one warm artifact cache, and the
digits at 16x16 with the tiny CNN trained on them (for the compressor and attack tests).

Every pytester folder's default cache (``.robustgate-cache`` under its rootdir) is the session's one warm cache:
its keys hash everything that decides an artifact (src/robustgate/provenance.py), so a run reads only what it
would have built, and the tiny net is trained once per session instead of once per test. A test that asserts
what only a cold run does (training or compressing lines, "cache: N reused, M built", rebuild explanations, what
lands in the cache) is marked ``cold_cache`` and starts from an empty folder of its own.

This file lives in tests/, not at the repository root: a root conftest is loaded by every pytest run in the
repository, the quickstart's included, and its up-front imports below (ONNX, torchao, matplotlib) cost a user's
`pytest robustness_specs/` about 10 seconds for nothing.
"""

from __future__ import annotations

import os
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

# pytester's in-process runs unload the modules first imported during a run. torch.ao's FX quantization
# and torchao register torch libraries and numpy's C extensions refuse a second import, and the plugin
# imports them lazily, so import the whole plugin stack once up front.
import matplotlib.backends.backend_agg  # noqa: F401  (the HTML report draws with it at session end)
import matplotlib.figure  # noqa: F401
import robustgate.plugin.items  # noqa: F401
import robustgate.evaluation  # noqa: F401
import torch.ao.quantization.quantize_fx  # noqa: F401
from robustgate.compressors.int8.pt2e import import_torchao

import_torchao()
# ONNX Runtime's and onnx's C extensions abort the process when imported a second time (robustgate imports them
# when a run loads an .onnx artifact), and torch.onnx's exporter keeps references to onnxscript's classes, which a
# pytester test that first imported them would unload at its end (the next export then fails on type checks).
import onnx  # noqa: E402, F401
import onnxruntime.quantization  # noqa: E402, F401
import onnxscript  # noqa: E402, F401
import torch.onnx._internal.exporter._core  # noqa: E402, F401
from tiny_cnn import build  # noqa: E402

from robustgate.data.digits import load_digits_domain  # noqa: E402
from robustgate.data.imageset import ImageSet  # noqa: E402
from robustgate.data.resize import to_model_geometry  # noqa: E402
from robustgate.data.splits import stratified_part  # noqa: E402
from robustgate.models.classifier import Classifier, Normalize  # noqa: E402
from robustgate.models.train import train_classifier  # noqa: E402
from robustgate.spec.model import TrainParams  # noqa: E402

# The one tiny network (tests/tiny_cnn.py): pytester projects get it as `tinynet.py`, specs name `tinynet:build`.
TINY_NET = (Path(__file__).parent / "tiny_cnn.py").read_text()

TINY_SPEC = """\
robustgate: 1
name: tiny
seed: 0
model:
  arch: tinynet:build
  kwargs: {num_classes: 10}
  weights: train
  train: {on: digits-train, epochs: 10, lr: 0.01}
  input: {size: [16, 16], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
datasets:
  digits-train: {builtin: digits, domain: handwritten, part: train}
  handwritten: {builtin: digits, domain: handwritten, part: test}
  printed: {builtin: digits, domain: printed, samples: 200}
variants:
  int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 128}}}
contracts:
  - accuracy: {on: handwritten, min: 0.5, max_drop: 0.10}
  - accuracy: {on: printed, max_drop: 0.15}
"""


DEFAULT_CACHE = ".robustgate-cache"  # the cache a run uses without --robustgate-cache-dir: under its rootdir


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cold_cache: the test's robustgate runs start from an empty cache of their own, not the session's warm one",
    )
    config.addinivalue_line(
        "markers",
        "serial: the test times code, counts torch threads or starts workers of its own, so scripts/test.sh runs it "
        "after the pytest-xdist run, alone on the machine",
    )
    config.addinivalue_line(
        "markers",
        "cuda: the test runs robustgate on a CUDA GPU; skipped, saying so, where torch sees none "
        "(scripts/gpu_check.sh runs them on one)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU: torch.cuda.is_available() is False on this machine")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(no_gpu)


@pytest.fixture(scope="session")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The artifact cache every pytester run shares unless its test is marked ``cold_cache``. pytest-xdist's
    workers share one (beside their own temporary folders): the cache's file locks make one of them build each
    artifact while the other waits for it."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return tmp_path_factory.mktemp("robustgate-cache")
    shared = tmp_path_factory.getbasetemp().parent / "robustgate-cache"
    shared.mkdir(exist_ok=True)
    return shared


@pytest.fixture(autouse=True)
def _pytester_runs_share_the_warm_cache(request: pytest.FixtureRequest) -> None:
    """Make a pytester folder's default cache a link to :func:`warm_cache`. A run given its own
    ``--robustgate-cache-dir`` or ``--robustgate-no-cache`` still gets what it asks for."""
    if "pytester" not in request.fixturenames or request.node.get_closest_marker("cold_cache"):
        return
    folder: pytest.Pytester = request.getfixturevalue("pytester")
    (folder.path / DEFAULT_CACHE).symlink_to(request.getfixturevalue("warm_cache"), target_is_directory=True)


@pytest.fixture
def tiny_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester folder with an importable tiny CNN (``tinynet:build``) and ``robustness_specs/tiny.yaml``."""
    pytester.makepyfile(tinynet=TINY_NET)
    pytester.syspathinsert()
    specs = pytester.mkdir("robustness_specs")
    (specs / "tiny.yaml").write_text(TINY_SPEC)
    return pytester


@pytest.fixture
def write_spec(pytester: pytest.Pytester):
    """Write a spec (dedented) to ``robustness_specs/NAME`` in the pytester folder; returns its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        folder = pytester.path / "robustness_specs"
        folder.mkdir(exist_ok=True)
        path = folder / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def junit_properties() -> Callable[[Path], dict[str, dict[str, str]]]:
    """Read a --junitxml file into {classname::name: {property: value}}."""

    def read(path: Path) -> dict[str, dict[str, str]]:
        return {
            f"{case.get('classname')}::{case.get('name')}": {p.get("name"): p.get("value") for p in case.iter("property")}
            for case in ET.parse(path).iter("testcase")
        }

    return read


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

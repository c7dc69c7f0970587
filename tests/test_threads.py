"""pytest-xdist workers evaluate on fewer torch threads than a serial run: that must not change a single bit.

robustgate.threads rests on this: predictions (fp32 and int8 kernels) and the input gradients attacks follow
are the same at any thread count, so only model builds (whose weight gradients are summed in a
thread-dependent order) need torch's default count.
"""

from __future__ import annotations

import pytest
import torch
import torchattacks
import torchvision

from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.ptq import PTQParams
from robustgate.inference import predict_logits
from robustgate.models.classifier import Classifier, Normalize
from robustgate.threads import build_threads, evaluation_share

CPU = torch.device("cpu")
pytestmark = pytest.mark.serial  # it sets and reads torch's thread count of the whole process


@pytest.fixture
def two_threads():
    """Torch's default on the CI machine (2 cores), made explicit so a share of it is 1 thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def at_threads(threads: int, compute):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return compute()
    finally:
        torch.set_num_threads(previous)


def test_a_worker_evaluates_on_its_share_and_builds_on_every_thread(two_threads) -> None:
    with evaluation_share(workers=2):
        assert torch.get_num_threads() == 1
        with build_threads():
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with evaluation_share(workers=1), build_threads():  # a serial run changes nothing
        assert torch.get_num_threads() == 2
    with evaluation_share(workers=8):  # more workers than cores: one thread each, never zero
        assert torch.get_num_threads() == 1


def test_predictions_and_attacks_give_the_same_bits_on_one_thread_as_on_two(trained_cnn: Classifier, digits) -> None:
    train, test = digits
    torch.manual_seed(0)
    resnet = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), torchvision.models.resnet18(num_classes=10)).eval()
    ptq = compression_steps.get("ptq")
    context = StepContext(dataset=lambda name: train, default_data="digits-train", example=torch.zeros(2, 3, 16, 16),
                          seed=0, progress=lambda _: None)
    int8 = ptq.apply(trained_cnn, PTQParams(), context)
    for model in (resnet, trained_cnn, int8):
        one, two = (at_threads(t, lambda: predict_logits(model, test, CPU)) for t in (1, 2))  # noqa: B023 (called here)
        assert torch.equal(one, two)

    images, labels = test.floats()[:64], torch.as_tensor(test.labels[:64])
    for model in (resnet, trained_cnn):
        attack = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=3, random_start=False)
        one, two = (at_threads(t, lambda: attack(images, labels)) for t in (1, 2))  # noqa: B023 (called here)
        assert torch.equal(one, two) and not torch.equal(one, images)  # the attack moved the images, identically


def test_a_build_inside_a_pinned_section_runs_on_the_default_count_under_the_same_key() -> None:
    from robustgate.latency.measure import torch_threads
    from robustgate.provenance import environment
    from robustgate.threads import DEFAULT_THREADS, build_thread_count

    outside = environment("weights")
    with torch_threads(1):  # as a latency item pins threads, then restores the baseline from the cache
        assert build_thread_count() == DEFAULT_THREADS
        assert environment("weights") == outside  # the same key: a cache hit, not a retraining
        with build_threads():
            assert torch.get_num_threads() == DEFAULT_THREADS
        assert torch.get_num_threads() == 1

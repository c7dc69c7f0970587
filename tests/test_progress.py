"""Progress bars: long phases open one with the work's total, advance it to the end, and draw nothing by default."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch

from robustgate.attacks import AttackSettings, attack_kinds
from robustgate.attacks.run import attacked_correct
from robustgate.models.train import train_classifier
from robustgate.progress import bar, drawn_by
from robustgate.spec.model import TrainParams


class Recorded:
    """Bars opened under :func:`drawn_by`, as (what, total, unit) and how far each got."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, int, str]] = []
        self.reached: list[int] = []

    @contextlib.contextmanager
    def __call__(self, total: int, what: str, unit: str) -> Iterator["Recorded"]:
        self.opened.append((what, total, unit))
        self.reached.append(0)
        yield self

    def update(self, n: int = 1) -> None:
        self.reached[-1] += n

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s


def test_without_a_drawer_a_bar_draws_nothing_and_costs_nothing() -> None:
    with bar(10, "anything") as shown:
        shown.update(3)
        shown.set_postfix_str("x")


def test_training_advances_one_bar_step_by_step_to_its_total(digits) -> None:
    from tiny_cnn import build

    from robustgate.models.classifier import Classifier, Normalize

    train, _ = digits
    model = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), build(width=8))
    recorded = Recorded()
    params = TrainParams(on="digits-train", epochs=2, batch_size=256, augment=False)
    with drawn_by(recorded):
        train_classifier(model, train, params, seed=0, device=torch.device("cpu"), progress=lambda _: None)
    steps = 2 * -(-len(train) // 256)
    assert recorded.opened == [("training", steps, "step")]
    assert recorded.reached == [steps]
    assert recorded.postfix.startswith("epoch 2/2, loss ")


def test_an_attack_advances_its_bar_image_by_image(trained_cnn, digits) -> None:
    images, labels = digits[1].floats()[:150], digits[1].labels[:150]
    perturb = attack_kinds.get("pgd").build(trained_cnn, AttackSettings(2 / 255, "Linf", 2, None, 1), 0)
    recorded = Recorded()
    with drawn_by(recorded):
        attacked_correct(perturb, trained_cnn, trained_cnn, images, labels, seed=0)
    assert recorded.opened == [("attacking (TracedPGD)", 150, "img")]
    assert recorded.reached == [150]


@pytest.mark.parametrize("total", [0, -1])
def test_an_empty_bar_is_never_opened(total: int) -> None:
    recorded = Recorded()
    with drawn_by(recorded), bar(total, "nothing"):
        pass
    assert recorded.opened == []

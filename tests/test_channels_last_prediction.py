"""fp32 prediction in channels_last memory: the same classes as contiguous, and models that refuse it predict as they are."""

from __future__ import annotations

import torch
from torch import nn

from robustgate.data.imageset import ImageSet, to_uint8
from robustgate.evaluation.models import _in_channels_last
from robustgate.inference import predict_logits
from robustgate.models.classifier import Classifier, Normalize


class Flattening(nn.Module):
    """A classic small CNN that flattens with ``.view``, which a channels_last tensor refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).view(x.size(0), -1))


def _classifier(net: nn.Module) -> Classifier:
    torch.manual_seed(0)
    return Classifier(Normalize((0.5,) * 3, (0.25,) * 3), net).eval()


def _images(n: int = 40) -> ImageSet:
    floats = torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return ImageSet(to_uint8(floats), torch.arange(n) % 10, tuple(str(i) for i in range(10)))


def test_a_conv_net_predicts_the_same_classes_from_its_channels_last_copy() -> None:
    from tiny_cnn import build

    model = _classifier(build(width=16))
    copied = _in_channels_last(model, torch.rand(2, 3, 16, 16))
    assert copied is not None and copied is not model
    conv = next(m for m in copied.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert next(m for m in model.modules() if isinstance(m, nn.Conv2d)).weight.is_contiguous()  # the original is kept
    data = _images()
    contiguous = predict_logits(model, data, torch.device("cpu"))
    fast = predict_logits(copied, data, torch.device("cpu"), channels_last=True)
    assert torch.equal(contiguous.argmax(1), fast.argmax(1))
    assert torch.allclose(contiguous, fast, atol=1e-4)


def test_a_model_whose_forward_refuses_channels_last_predicts_as_it_is() -> None:
    model = _classifier(Flattening())
    assert _in_channels_last(model, torch.rand(2, 3, 16, 16)) is None
    assert predict_logits(model, _images(), torch.device("cpu")).shape == (40, 10)

"""A team's own state_dict loads into the network the spec builds, whatever layers need version marks."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
import torchvision

from robustgate.compressors.base import load_into_rebuilt, net_state
from robustgate.models.classifier import Classifier, Normalize
from robustgate.models.weights import load_checkpoint


def mnasnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.mnasnet0_5(num_classes=10).eval()


def test_a_saved_mnasnet_state_dict_loads(tmp_path: Path) -> None:
    """torchvision's MNASNet refuses a state without its version marks; robustgate's loading kept none (issue 18)."""
    source = mnasnet()
    plain, wrapped, stripped = tmp_path / "plain.pt", tmp_path / "parallel.pt", tmp_path / "stripped.pt"
    torch.save(source.state_dict(), plain)
    torch.save(torch.nn.DataParallel(source).state_dict(), wrapped)  # keys and marks under "module."
    torch.save(OrderedDict(source.state_dict().items()), stripped)  # a copy without the marks
    x = torch.rand(2, 3, 64, 64)
    for path in (plain, wrapped, stripped):
        target = torchvision.models.mnasnet0_5(num_classes=10).eval()
        load_checkpoint(target, path, trusted=False, arch="torchvision:mnasnet0_5")
        with torch.no_grad():
            assert torch.equal(target(x), source(x)), path.name


def test_a_cached_step_state_of_mnasnet_restores() -> None:
    model = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), mnasnet())
    state = net_state(model)  # what the cache stores for prune and distill: tensors only
    rebuilt = Classifier(Normalize((0.5,) * 3, (0.25,) * 3), torchvision.models.mnasnet0_5(num_classes=10))
    restored = load_into_rebuilt(rebuilt, state, "prune")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(restored(x), model.eval()(x))

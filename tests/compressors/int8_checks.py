"""Checks the compressor matrices share: an int8 model's twin is faithful, and each architecture trains once a worker."""

from __future__ import annotations

import pytest
import torch

from robustgate.attacks.protocol import MIN_TWIN_AGREEMENT, IncompleteProtocol, Policy, fake_quant_twin
from robustgate.compressors.int8.engine import Int8Net
from robustgate.compressors.int8.lockstep import twin_fidelity
from robustgate.models.classifier import Classifier
from robustgate.provenance import int8_sums_saturate


def per_arch(archs: list[str]) -> list:
    """Under pytest-xdist (--dist loadgroup) one worker gets all tests of an architecture, so it is trained once."""
    return [pytest.param(arch, marks=pytest.mark.xdist_group(arch)) for arch in archs]


def assert_faithful_twin(int8: Classifier, images: torch.Tensor) -> None:
    """The protocol's own twin: its forward pass is the int8 model's, it reproduces every int8 layer from
    that layer's int8 input on the images, and its input gradients are finite and not zero."""
    assert isinstance(int8.net, Int8Net)
    assert int8(images[:2].clone().requires_grad_(True)).grad_fn is None  # int8 kernels: no autograd
    images = images[:128]
    twin = fake_quant_twin(int8, images[:2])
    with torch.no_grad():
        assert torch.equal(twin(images), int8(images))
    fidelity = float(twin_fidelity(twin, images).float().mean())
    if fidelity < MIN_TWIN_AGREEMENT and int8_sums_saturate():
        # An x86 CPU without VNNI (an AVX2 one): fbgemm's int8 kernels saturate 16-bit sums on some layers (seen on
        # pruned RegNet's group convolutions: 94-97% of their codes reproduced), which the twin's exact int8
        # arithmetic cannot follow. The protocol must refuse such a twin, saying why, not trust its gradients.
        with pytest.raises(IncompleteProtocol, match="has no VNNI"):
            Policy().gaps({}, fidelity)
        return
    assert fidelity >= MIN_TWIN_AGREEMENT, fidelity
    x = images[:8].clone().requires_grad_(True)
    gradient = torch.autograd.grad(twin(x).logsumexp(1).sum(), x)[0]
    assert torch.isfinite(gradient).all() and (gradient != 0).float().mean() > 0.5

"""Running a fake-quant twin in lockstep with its int8 model: the int8 model's values forward, the
twin's straight-through gradients backward (BPDA, Athalye et al. 2018).

A twin computes each int8 layer in float from dequantized weights. Run on its own it drifts from
the int8 model: its float arithmetic sums in another order than the int8 kernels, so now and then a
value lands on the other side of a rounding boundary, and deep, sensitive networks amplify those
one-step differences layer by layer (a MobileNetV2 trained briefly on the digits: 0.003% of the
codes differ after its first block, 40% after its tenth, and 5% of its predictions). So the twin
never runs on its own when it is attacked: the int8 model runs first on the same batch and its
result at every rounding point is recorded; each of the twin's rounding points (a :class:`Snap`)
then passes that exact value forward, and the gradient of its own fake quantization backward.
The twin's forward pass is the int8 model's, layer by layer and at the logits, and its gradient is
the straight-through estimate taken at the int8 model's own activations.

Each snap point also tallies, per image, the share of int8 codes it reproduced to within one
quantization step from the int8 model's own inputs: a twin layer that computes something else
shows up there (:func:`twin_fidelity`), where a drifting free run could not tell it from noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from robustgate.compressors.int8.float_layers import QParams, fake_quantize
from robustgate.models.classifier import Classifier

Reference = Callable[[torch.Tensor], dict[str, torch.Tensor]]
"""Runs the int8 model on a batch of (normalised) inputs: its float value at every rounding point, by name."""


class Lockstep:
    """What a twin's snap points share for the batch being run: the int8 model's values, and the tally."""

    def __init__(self) -> None:
        self.values: dict[str, torch.Tensor] | None = None
        self.tally: list[torch.Tensor] | None = None  # per snap point, per image: share of codes reproduced


class Snap(nn.Module):
    """A rounding point of the twin: fake-quantize the float result onto the int8 grid (straight-through
    gradient, zero outside the range), then, in lockstep, pass the int8 model's own value forward."""

    state: Lockstep  # set with object.__setattr__ below: shared, so never a submodule

    def __init__(self, name: str, qparams: QParams | None, state: Lockstep, step: float | None = None) -> None:
        super().__init__()
        self.name, self.qparams = name, qparams
        self.step = step if step is not None else (qparams[0] if qparams else None)
        object.__setattr__(self, "state", state)  # shared, not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = fake_quantize(x, *self.qparams) if self.qparams else x
        values = self.state.values
        exact = None if values is None else values.get(self.name)
        if exact is None or exact.shape != y.shape:
            return y
        if self.state.tally is not None and self.step is not None and y.dim() > 0:
            close = (y.detach() - exact).abs() <= 1.5 * self.step  # codes at most one step apart
            self.state.tally.append(close.reshape(len(close), -1).float().mean(1) if y.dim() > 1 else close.float())
        return y + (exact - y).detach()


class LockstepTwin(nn.Module):
    """The twin network driven by its int8 model: see the module docstring."""

    reference: Reference  # both set with object.__setattr__ below: neither is part of the twin's state
    state: Lockstep

    def __init__(self, twin: nn.Module, reference: Reference, state: Lockstep) -> None:
        super().__init__()
        self.twin = twin
        object.__setattr__(self, "reference", reference)  # the int8 model is not part of the twin's state
        object.__setattr__(self, "state", state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            values = self.reference(x.detach())
        self.state.values = values
        try:
            return self.twin(x)
        finally:
            self.state.values = None

    @contextmanager
    def tallying(self) -> Iterator[list[torch.Tensor]]:
        tally: list[torch.Tensor] = []
        self.state.tally = tally
        try:
            yield tally
        finally:
            self.state.tally = None


def twin_fidelity(twin: Classifier, images: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """Per image: does the twin, given the int8 model's own input to every layer, reproduce at least 99%
    of the int8 codes of every layer to within one quantization step? ``twin``: a Classifier whose net
    is a :class:`LockstepTwin`. A twin with no int8 activations to compare (dynamic int8: activations
    are quantized per batch at run time) is judged by its free-running predictions instead."""
    lockstep, agree = twin.net, []
    if not isinstance(lockstep, LockstepTwin):
        raise TypeError(f"twin_fidelity needs a Classifier whose net is a LockstepTwin, not a {type(lockstep).__name__}")
    for start in range(0, len(images), batch):
        x = images[start : start + batch]
        with torch.no_grad(), lockstep.tallying() as tally:
            exact = twin(x)
        if tally:
            agree.append((torch.stack(tally) >= 0.99).all(0))
        else:
            with torch.no_grad():
                free = lockstep.twin(twin.normalize(x))
            agree.append(free.argmax(1) == exact.argmax(1))
    return torch.cat(agree)

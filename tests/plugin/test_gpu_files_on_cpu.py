"""A team trains on a GPU and gates on a CPU-only CI machine: files torch.save wrote from CUDA tensors load there.

Such a file records each tensor's device ("cuda:0"), and a plain ``torch.load`` on a machine without CUDA refuses
it. This machine has no GPU, so the files are written as a GPU would write them: torch.save's device tag is forced
to "cuda:0" (:func:`written_as_on_a_gpu`), which is all a GPU changes in the file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch
from tiny_spec_edits import edit

from robustgate.models.classifier import Classifier


@contextlib.contextmanager
def written_as_on_a_gpu() -> Iterator[None]:
    """torch.save tags every tensor as CUDA device 0's while inside (torch's device taggers are consulted in order)."""
    from torch import serialization

    entry = (0, lambda storage: "cuda:0", lambda storage, location: None)
    serialization._package_registry.insert(0, entry)
    try:
        yield
    finally:
        serialization._package_registry.remove(entry)


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU, a GPU-tagged file simply loads onto it")
def test_weights_and_artifacts_saved_from_a_gpu_are_gated_on_a_cpu_only_machine(
    tiny_project: pytest.Pytester, write_spec, trained_cnn: Classifier
) -> None:
    specs = tiny_project.path / "robustness_specs"
    with written_as_on_a_gpu():
        torch.save(trained_cnn.net.state_dict(), specs / "gpu_weights.pt")
        torch.save(trained_cnn.net, specs / "gpu_module.pt")  # a whole pickled module, as some teams ship
    with pytest.raises(RuntimeError, match="Attempting to deserialize object on a CUDA device"):
        torch.load(specs / "gpu_weights.pt", weights_only=True)  # the files are a GPU's: plain torch.load refuses
    spec = edit((specs / "tiny.yaml").read_text(), "  kwargs: {num_classes: 10}\n  weights: train\n"
                "  train: {on: digits-train, epochs: 10, lr: 0.01}\n",
                "  kwargs: {num_classes: 10, width: 32}\n  weights: gpu_weights.pt\n")
    spec = edit(spec, "  int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 128}}}\n",
                "  int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 128}}}\n"
                "  own-module: {artifact: {path: gpu_module.pt, trusted: true}}\n")
    write_spec(spec, "tiny.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider", "-v")
    # the accuracy contract on handwritten of the baseline, int8 and own-module, and printed's drop of both variants
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*own-module*accuracy*handwritten*PASSED*"])

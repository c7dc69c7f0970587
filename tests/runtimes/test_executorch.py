"""ExecuTorch: robustgate's exports and XNNPACK int8 programs, and a team's own .pte, run in ExecuTorch's runtime on
XNNPACK's real kernels, made from the trained tiny network."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from robustgate.attacks.base import AttackSettings
from robustgate.attacks.protocol import IncompleteProtocol, fake_quant_twin, robust_correct
from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.artifact import ArtifactParams
from robustgate.compressors.export import ExportParams
from robustgate.compressors.int8.lockstep import twin_fidelity
from robustgate.compressors.int8.twin import NoTwin
from robustgate.compressors.ptq import PTQParams
from robustgate.models.classifier import Classifier
from robustgate.runtimes.executorch import ExecuTorchNet

pytestmark = pytest.mark.xdist_group("executorch")  # one worker builds the module's programs once

export, ptq, artifact = (compression_steps.get(name) for name in ("export", "ptq", "artifact"))


def context(train, spec_dir: Path | None = None) -> StepContext:
    return StepContext(dataset=lambda name: train, default_data="digits-train", example=torch.zeros(2, 3, 16, 16), seed=0,
                       progress=lambda _: None, spec_dir=spec_dir)


@pytest.fixture(scope="module")
def programs(trained_cnn: Classifier, digits) -> dict[str, Classifier]:
    """The trained tiny network lowered to XNNPACK as fp32, and quantized to int8 by PT2E with the XNNPACKQuantizer."""
    ctx = context(digits[0])
    fp32 = export.apply(trained_cnn, ExportParams(format="executorch"), ctx)
    int8 = ptq.apply(trained_cnn, PTQParams(backend="xnnpack", calibrate={"on": "digits-train", "samples": 128}), ctx)
    return {"fp32": fp32, "int8": int8}


def input_gradient(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    x = images.clone().requires_grad_(True)
    return torch.autograd.grad(model(x).logsumexp(1).sum(), x)[0]


def test_an_executorch_export_computes_its_parent_in_the_runtime(programs, trained_cnn: Classifier, digits) -> None:
    images = digits[1].floats()
    program = programs["fp32"]
    assert isinstance(program.net, ExecuTorchNet) and not program.net.static_batch
    assert len(images) > program.net.batch_bound  # memory is planned for 32 images: the rest run in further chunks
    ctx = context(digits[0])
    assert not export.is_differentiable(program, ctx) and not export.counts_size(program, ctx)
    with torch.no_grad():
        logits = program(images)
        torch.testing.assert_close(logits, trained_cnn(images), rtol=1e-4, atol=1e-5)
    assert program.net.per_call == 32  # it answers each image in a batch as alone: batches of 32 per call
    restored = export.restore(trained_cnn, ExportParams(format="executorch"), export.state(program), ctx)
    with torch.no_grad():
        assert torch.equal(restored(images), logits)
    # the twin of a program robustgate lowered: the graph it came from, with the same input gradient as the parent
    twin = fake_quant_twin(program, images[:2])
    assert bool(twin_fidelity(twin, images).all())
    torch.testing.assert_close(input_gradient(twin, images[:8]), input_gradient(trained_cnn, images[:8]), rtol=1e-3, atol=1e-6)


def test_xnnpack_int8_is_calibrated_on_the_spec_images_and_runs_int8_kernels(programs, trained_cnn: Classifier, digits) -> None:
    images, labels = digits[1].floats(), torch.as_tensor(digits[1].labels)
    int8 = programs["int8"]
    assert isinstance(int8.net, ExecuTorchNet)
    with torch.no_grad():
        logits, reference = int8(images), trained_cnn(images)
    assert not torch.allclose(logits, reference, atol=1e-3)  # int8 arithmetic, not the fp32 graph
    agreement = float((logits.argmax(1) == reference.argmax(1)).float().mean())
    accuracy, fp32 = (float((out.argmax(1) == labels).float().mean()) for out in (logits, reference))
    assert agreement >= 0.97 and accuracy >= fp32 - 0.03
    assert len(int8.net.source) < 0.5 * len(programs["fp32"].net.source)  # int8 weights in the program
    params = PTQParams(backend="xnnpack", calibrate={"on": "digits-train", "samples": 128})
    restored = ptq.restore(trained_cnn, params, ptq.state(int8), context(digits[0]))
    with torch.no_grad():
        assert torch.equal(restored(images), logits)


def test_the_twin_of_an_xnnpack_int8_program_agrees_with_it_and_drives_the_white_box_leg(
    programs, trained_cnn: Classifier, digits
) -> None:
    images, labels = digits[1].floats(), torch.as_tensor(digits[1].labels)
    int8 = programs["int8"]
    assert int8.net.codes is not None  # lowered again with XNNPACK's codes exposed: the twin runs in lockstep with them
    twin = fake_quant_twin(int8, images[:2])
    with torch.no_grad(), twin.net.tallying() as tally:
        twin(images[:8])
    assert len(tally) > 2  # every int8 activation is compared with XNNPACK's codes, not only the logits
    with torch.no_grad():
        torch.testing.assert_close(twin(images), int8(images), rtol=0, atol=0)  # the program's logits forward
    assert float(twin_fidelity(twin, images).float().mean()) >= 0.99
    result = robust_correct("pgd", AttackSettings(16 / 255, "Linf", 5, None, 1), int8, trained_cnn, images[:48], labels[:48],
                            seed=0, queries=50, differentiable=False)
    assert result.legs[0] == "twin" and result.twin_agreement is not None and result.twin_agreement >= 0.99
    assert result.counts()["twin"] > 0


def test_a_change_of_torch_threads_between_calls_loads_the_program_again_on_the_new_pool(programs, digits) -> None:
    from executorch.extension.pybindings import portable_lib

    images = digits[1].floats()[:16]
    with torch.no_grad():
        expected = {name: program(images) for name, program in programs.items()}
    previous = torch.get_num_threads()
    try:
        for threads in (2, 1, 2, 1):  # resizing the pool under a loaded program hung or crashed the process
            torch.set_num_threads(threads)
            with torch.no_grad():
                for name, program in programs.items():
                    torch.testing.assert_close(program(images), expected[name], rtol=1e-5, atol=1e-6)
            assert portable_lib._threadpool_get_thread_count() == threads
    finally:
        torch.set_num_threads(previous)


def test_a_twin_of_another_network_than_the_program_is_caught_at_the_logits(programs, digits) -> None:
    images = digits[1].floats()[:64]
    int8 = programs["int8"]
    mismatched = int8.with_net(ExecuTorchNet(int8.net.source, programs["fp32"].net.reference))  # the fp32 graph
    twin = fake_quant_twin(mismatched, images[:2])
    assert float(twin_fidelity(twin, images).float().mean()) < 0.5


def test_a_teams_static_batch_program_is_padded_and_attacked_without_a_twin(tmp_path: Path, trained_cnn: Classifier, digits) -> None:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    images, labels = digits[1].floats()[:24], torch.as_tensor(digits[1].labels[:24])
    example = trained_cnn.normalize(images[:4])
    program = to_edge_transform_and_lower(torch.export.export(trained_cnn.net.eval(), (example,)),  # batch fixed at 4
                                          partitioner=[XnnpackPartitioner()]).to_executorch()
    (tmp_path / "own.pte").write_bytes(program.buffer)
    params = ArtifactParams(path="own.pte")
    ctx = context(digits[0], spec_dir=tmp_path)
    own = artifact.apply(trained_cnn, params, ctx)
    assert isinstance(own.net, ExecuTorchNet) and own.net.static_batch and own.net.batch_bound == 4
    assert artifact.stored_bytes(params, ctx) == (tmp_path / "own.pte").stat().st_size
    with torch.no_grad():  # 24 images and odd batches run as padded batches of 4
        torch.testing.assert_close(own(images), trained_cnn(images), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(own(images[:3]), trained_cnn(images[:3]), rtol=1e-4, atol=1e-5)
    with pytest.raises(NoTwin, match="an ExecuTorch program made elsewhere"):
        fake_quant_twin(own, images[:2])
    with pytest.raises(IncompleteProtocol, match="twin leg"):
        robust_correct("pgd", AttackSettings(8 / 255, "Linf", 2, None, 1), own, trained_cnn, images, labels,
                       seed=0, queries=10, differentiable=False)


class BatchMixing(torch.nn.Module):
    """A network whose answer for an image depends on the other images of its batch (their mean logits)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        return logits + 0.5 * logits.mean(0, keepdim=True)


def test_a_program_that_answers_otherwise_in_a_batch_is_run_one_image_per_call(tmp_path: Path, trained_cnn: Classifier, digits) -> None:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    images = digits[1].floats()[:40]
    example, batch = (trained_cnn.normalize(images[:32]),), ({0: torch.export.Dim("batch", min=1, max=64)},)
    exported = torch.export.export(BatchMixing(trained_cnn.net).eval(), example, dynamic_shapes=batch)
    (tmp_path / "mixing.pte").write_bytes(to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)
    own = artifact.apply(trained_cnn, ArtifactParams(path="mixing.pte"), context(digits[0], spec_dir=tmp_path))
    with pytest.warns(RuntimeWarning, match="answers an image differently in a batch of 32 than alone.*one image per call"):
        with torch.no_grad():
            scored = own(images)
    # alone, an image's batch mean is itself: 1.5 times its logits, what a device answering one image at a time gets
    torch.testing.assert_close(scored, 1.5 * trained_cnn(images), rtol=1e-4, atol=1e-5)
    assert own.net.per_call == 1 and "one image per call" in repr(own.net)
    assert copy.deepcopy(own.net).per_call == 1  # a copy of the same program keeps the check's answer


def test_a_file_that_is_not_a_program_is_one_clear_error(tmp_path: Path, trained_cnn: Classifier, digits) -> None:
    from robustgate.errors import CompressionError

    (tmp_path / "broken.pte").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(CompressionError, match="ExecuTorch cannot load 'broken.pte'"):
        artifact.apply(trained_cnn, ArtifactParams(path="broken.pte"), context(digits[0], spec_dir=tmp_path))

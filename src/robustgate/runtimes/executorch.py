"""An ExecuTorch program (``.pte``) run by ExecuTorch's Python runtime, behind ``nn.Module``'s call.

As with ONNX Runtime (``onnx.py``), predictions, the attacks' queries and latency all go through the program's
``forward`` method in ExecuTorch's runtime, so every contract measures the kernels that ship: XNNPACK's fp32 and
int8 kernels for a delegated program, ExecuTorch's portable ops for the rest.

A program's memory is planned for an input shape when it is made: its batch dimension is either static (one size)
or bounded (any size up to the bound). robustgate evaluates batches of any size, so a batch above the bound runs in
chunks, and a static program gets its short chunks padded to its size (the padded rows are dropped). Padding costs
time, never accuracy: a latency contract on a static program of another batch size times the padded batch, which
can only make the program look slower, never faster.

A program's answer for an image should not depend on the batch it runs in, but it can: ExecuTorch 1.5.1's XNNPACK
delegate gave a MobileNetV3-small (int8, 32 px, batch bounded at 32) other logits for every image in batches of more
than 8 than alone (up to two steps of the logits' int8 grid; the same on one thread). A device answering one image
at a time runs the batch-1 computation. So before its first batched call, a program runs seeded images together and
one by one; if any answer differs, it is run one image per call from then on (slower, and it says so in a warning).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from robustgate.errors import CompressionError, first_line

if TYPE_CHECKING:
    from robustgate.compressors.int8.lockstep import LockstepTwin

FLOAT32 = 6  # ExecuTorch's ScalarType code for float32 (the dtype of a program's input tensor metadata)
BATCH_CHECKED = 32  # the most images one call runs: a batch of them is checked against one-image calls first


class ExecuTorchNet(nn.Module):
    """A serialized ExecuTorch program (or a ``.pte`` file) in ExecuTorch's runtime.

    ``reference``: for a program robustgate lowered from a PT2E int8 graph, that converted graph (a
    ``torch.export`` program, saved): the graph its twin mirrors. A program from elsewhere has none: its delegate
    blobs hold XNNPACK's packed kernels, not a graph robustgate can compute with torch ops.

    XNNPACK's thread pool follows torch's thread count at each call, so the threads robustgate pins for latency
    contracts and for pytest-xdist workers pin the runtime too. The pool is one per process, and each loaded method's
    XNNPACK runtime keeps a pointer to the pool it was loaded with: resizing the pool frees it (hence ExecuTorch's
    "_unsafe_reset_threadpool"; a method run after it crashed the test process). So a resize starts a new pool
    generation, and every method loaded in an older one is loaded again before it runs.
    """

    runs_in_runtime = True  # robustgate's steps ask this: no autograd, no torch parameters to count

    def __init__(self, source: Path | bytes, reference: bytes | None = None, codes: bytes | None = None) -> None:
        super().__init__()
        self.source = source if isinstance(source, bytes) else Path(source)
        self.reference, self.codes = reference, codes  # codes: the program with its int8 codes exposed (lower_int8)
        self.name = "the ExecuTorch program" if isinstance(source, bytes) else f"'{Path(source).name}'"
        self._method, self._generation = self._load(), _POOL.generation
        metadata = self._method.metadata
        if metadata.num_inputs() != 1:
            raise CompressionError(
                f"{self.name} takes {metadata.num_inputs()} inputs; robustgate feeds a classifier one batch of images",
                hint="export the model with a single image input",
            )
        meta = metadata.input_tensor_meta(0)
        if meta.dtype() != FLOAT32:
            raise CompressionError(
                f"{self.name} takes an input of ExecuTorch dtype code {meta.dtype()}; robustgate feeds float32 images",
                hint="export the model with a float32 image input; quantize inside the graph (PT2E)",
            )
        self.planned_shape = tuple(meta.sizes())
        self.batch_bound = self.planned_shape[0] if self.planned_shape else 1
        self.static_batch = self.batch_bound > 1 and not self._runs_batch(1)
        self.per_call: int | None = None  # images per call: set by the first batched call (_checked_per_call)

    def _load(self) -> Any:
        try:
            with warnings.catch_warnings():  # "This API is experimental": the runtime's Python API, as documented
                warnings.simplefilter("ignore")
                from executorch.runtime import Runtime

            with _native_stderr_quiet():  # the runtime's CPU probe logs lines about /sys files on x86
                program = Runtime.get().load_program(self.source if isinstance(self.source, bytes) else str(self.source))
                if "forward" not in program.method_names:
                    raise CompressionError(
                        f"{self.name} has no forward method (it has {', '.join(sorted(program.method_names))})",
                        hint="lower the model's forward: to_edge_transform_and_lower(torch.export.export(net, (x,)), ...)",
                    )
                return program.load_method("forward")
        except CompressionError:
            raise
        except Exception as err:  # the runtime raises RuntimeError/ValueError with its error code for a bad program
            raise CompressionError(
                f"ExecuTorch cannot load {self.name}: {first_line(err)}",
                hint="check that the file is a whole .pte written by to_executorch() with backends this runtime has "
                "(XNNPACK, portable ops)",
            ) from None

    def _runs_batch(self, size: int) -> bool:
        example = torch.zeros((size, *self.planned_shape[1:]))
        try:
            with _native_stderr_quiet():  # a static program refuses with a C++ log line before the exception
                self._method.execute([example])
        except RuntimeError:
            return False
        return True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs(x)[0].to(device=x.device, dtype=torch.float32)

    def outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every output of the program on the batch ``x`` (on the CPU), the logits first."""
        _POOL.follow(torch.get_num_threads())
        if self._generation != _POOL.generation:  # loaded with a pool that no longer exists
            self._method, self._generation = self._load(), _POOL.generation
        images = x.detach().to("cpu", torch.float32).contiguous()
        if len(images) > 1 and self.per_call is None:
            self.per_call = self._checked_per_call(images.shape[1:])
        return self._run(images, self.per_call or 1)

    def _run(self, images: torch.Tensor, per_call: int) -> list[torch.Tensor]:
        chunks: list[list[torch.Tensor]] = []
        for start in range(0, len(images), per_call):
            chunk = images[start : start + per_call]
            size = len(chunk)
            if self.static_batch and size < self.batch_bound:
                chunk = torch.cat([chunk, chunk.new_zeros((self.batch_bound - size, *chunk.shape[1:]))])
            try:
                outs = self._method.execute([chunk])
            except RuntimeError as err:
                raise RuntimeError(
                    f"ExecuTorch: {self.name} fails on a {list(chunk.shape)} input (planned for "
                    f"{list(self.planned_shape)}): {first_line(err)}"
                ) from None
            chunks.append([out[:size].clone() for out in outs])  # the runtime reuses its output buffers
        return [torch.cat(parts) for parts in zip(*chunks, strict=True)]

    def _checked_per_call(self, image_shape: torch.Size) -> int:
        """How many images one call may run: a full call's worth (up to BATCH_CHECKED) if seeded images get the same
        outputs together as one by one, else 1 (see the module docstring)."""
        per_call = min(self.batch_bound, BATCH_CHECKED)
        images = torch.randn((per_call, *image_shape), generator=torch.Generator().manual_seed(0))
        together, alone = self._run(images, per_call), self._run(images, 1)
        if all(torch.equal(a, b) for a, b in zip(together, alone, strict=True)):
            return per_call
        warnings.warn(
            f"{self.name} answers an image differently in a batch of {per_call} than alone; robustgate runs it one "
            "image per call, as a device answering one image at a time does (slower)",
            RuntimeWarning, stacklevel=3,
        )
        return 1

    def twin(self, example: torch.Tensor) -> LockstepTwin:
        """The twin of a program robustgate lowered from a PT2E int8 graph (``executorch_twin.py``); raises
        ``NoTwin`` for a program from elsewhere."""
        from robustgate.runtimes.executorch_twin import executorch_twin

        return executorch_twin(self, example)

    def shipped_bytes(self) -> int:
        return len(self.source) if isinstance(self.source, bytes) else self.source.stat().st_size

    def runtime_label(self) -> str:
        """What runs this program, for a latency's record."""
        from importlib.metadata import version

        return f"ExecuTorch {version('executorch')}"

    def extra_repr(self) -> str:
        batch = f"static batch {self.batch_bound}" if self.static_batch else f"batch up to {self.batch_bound}"
        per_call = ", one image per call" if self.per_call == 1 else ""
        return f"{self.name} in ExecuTorch ({batch}{per_call})"

    # A loaded method is a native object: copies and pickles carry the program and load their own.
    def __deepcopy__(self, memo: dict[int, Any]) -> ExecuTorchNet:
        copied = ExecuTorchNet(self.source, self.reference, self.codes)
        copied.per_call = self.per_call  # the same program in this process: its batch check holds for the copy
        return copied

    def __reduce__(self) -> tuple[Any, ...]:
        return (ExecuTorchNet, (self.source, self.reference, self.codes))


class _ThreadPool:
    """ExecuTorch's process-wide thread pool, resized to torch's thread count when that changes; ``generation``
    counts the pools, so methods loaded with a freed one know to load again."""

    def __init__(self) -> None:
        self.generation = 0

    def follow(self, threads: int) -> None:
        from executorch.extension.pybindings import portable_lib

        if portable_lib._threadpool_get_thread_count() != threads:
            with _native_stderr_quiet():  # it logs each reset
                portable_lib._unsafe_reset_threadpool(threads)
            self.generation += 1


_POOL = _ThreadPool()


@contextmanager
def _native_stderr_quiet() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null: ExecuTorch's C++ runtime logs there, beneath Python's sys.stderr."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)

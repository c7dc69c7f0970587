"""An ONNX model run by ONNX Runtime, behind ``nn.Module``'s call.

Predictions, the attacks' queries and latency timing all call the variant's network; wrapping the runtime as one
means every contract measures the kernels that ship (ONNX Runtime's CPU execution provider: its fp32 kernels, and
its int8 ones for QDQ and QOperator graphs), not a PyTorch re-implementation of them. The runtime has no autograd:
its output never requires grad, so the attack protocol scores it through its indirect legs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from robustgate.errors import CompressionError, first_line

if TYPE_CHECKING:
    import onnxruntime

# ONNX tensor types robustgate can feed its float images to, and the numpy dtype of each.
INPUT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


def onnx_files(path: Path) -> list[Path]:
    """The model file and the external-data files its initializers point to (large models keep weights beside
    the graph): together, the bytes that ship."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    files = [path]
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = next((entry.value for entry in tensor.external_data if entry.key == "location"), None)
            if location is not None and (path.parent / location) not in files:
                files.append(path.parent / location)
    return files


class OnnxRuntimeNet(nn.Module):
    """An ONNX file in an ``onnxruntime.InferenceSession`` on the CPU execution provider.

    The session follows torch's thread count at each call (one session per count, made on first use), so the
    threads robustgate pins for latency contracts and for pytest-xdist workers pin the runtime too. Idle-thread
    spinning is off: spinning threads would take CPU from the fp32 baseline that latency interleaves with it.
    """

    runs_in_runtime = True  # robustgate's steps ask this: no autograd, no torch parameters to count

    def __init__(self, source: Path | bytes, optimize: bool = True) -> None:
        super().__init__()
        self.optimize = optimize  # False: run the graph as it is (one ORT already optimised)
        # a file (an artifact, which may keep its weights in external-data files beside it) or a serialized model
        # (robustgate's own export, kept in its cache)
        self.source = source if isinstance(source, bytes) else Path(source)
        self.name = "the exported model" if isinstance(source, bytes) else f"'{Path(source).name}'"
        self._sessions: dict[int, onnxruntime.InferenceSession] = {}
        self._optimized: bytes | None = None
        session = self._session(torch.get_num_threads())
        inputs = session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(f"'{entry.name}'" for entry in inputs)
            raise CompressionError(
                f"{self.name} takes {len(inputs)} inputs ({names}); robustgate feeds a classifier one "
                "batch of images",
                hint="export the model with a single image input",
            )
        if inputs[0].type not in INPUT_TYPES:
            raise CompressionError(
                f"{self.name} takes {inputs[0].type} input '{inputs[0].name}'; robustgate feeds float images",
                hint="export the model with a float32 (or float16) image input; quantize inside the graph",
            )
        self.input_name = inputs[0].name
        self.input_dtype = INPUT_TYPES[inputs[0].type]

    def _session(self, threads: int) -> onnxruntime.InferenceSession:
        if threads not in self._sessions:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if not self.optimize:
                options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
            try:
                self._sessions[threads] = self._open(options)
            except Exception as err:  # ORT raises its own Fail/InvalidGraph/... kinds for a file it cannot run
                raise CompressionError(
                    f"ONNX Runtime cannot load {self.name}: {first_line(err)}",
                    hint="check that the file is a whole ONNX model (onnx.checker.check_model) with the opsets ONNX "
                    "Runtime's CPU provider runs",
                ) from None
        return self._sessions[threads]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return next(iter(self.named_outputs(x).values())).to(torch.float32)

    def named_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every output of the graph on the batch ``x``, by name, in the graph's order (the logits first)."""
        array = x.detach().to("cpu", torch.float32).contiguous().numpy().astype(self.input_dtype, copy=False)
        session = self._session(torch.get_num_threads())
        try:
            outs = session.run(None, {self.input_name: array})
        except Exception as err:  # ORT's messages span lines ("... indices\n index: 0 Got: 3 Expected: 2"): one line
            said = " ".join(str(err).split())
            raise RuntimeError(f"ONNX Runtime: {said.split(' : ')[-1]}") from None
        names = [entry.name for entry in session.get_outputs()]
        return {name: torch.from_numpy(out).to(x.device) for name, out in zip(names, outs, strict=True)}

    def optimized_graph(self) -> bytes:
        """The graph ORT's CPU provider runs, as ORT saves it: optimised to the extended level, where it fuses QDQ
        groups into its int8 operators (the further, layout-level rewrites of the default level touch fp32 convs
        only; measured: the same logits). Saved once per model."""
        import tempfile

        import onnxruntime

        if self._optimized is None:
            options = onnxruntime.SessionOptions()
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            with tempfile.TemporaryDirectory() as folder:
                options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
                self._open(options)
                self._optimized = Path(options.optimized_model_filepath).read_bytes()
        return self._optimized

    def _open(self, options: onnxruntime.SessionOptions) -> onnxruntime.InferenceSession:
        """A session of this model on the CPU provider, logging errors only (ORT logs optimisation notes as warnings)."""
        import onnxruntime

        options.log_severity_level = 3
        source = self.source if isinstance(self.source, bytes) else str(self.source)
        return onnxruntime.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])

    def twin(self, example: torch.Tensor) -> nn.Module:
        """The differentiable twin of this graph, in lockstep with the runtime (``onnx_twin.py``); ``example``: a
        batch of its inputs. Raises ``NoTwin`` naming an operator the twin does not compute."""
        from robustgate.runtimes.onnx_twin import onnx_twin

        return onnx_twin(self, example)

    def shipped_bytes(self) -> int:
        """Bytes of the model as it ships: the serialized model, or the file and its external-data files."""
        if isinstance(self.source, bytes):
            return len(self.source)
        return sum(path.stat().st_size for path in onnx_files(self.source))

    def runtime_label(self) -> str:
        """What runs this model, for a latency's record."""
        from importlib.metadata import version

        return f"ONNX Runtime {version('onnxruntime')} (CPUExecutionProvider)"

    def extra_repr(self) -> str:
        return f"{self.name} in ONNX Runtime (CPUExecutionProvider)"

    # A session is a native object: copies and pickles carry the file's path and open sessions of their own.
    def __deepcopy__(self, memo: dict[int, Any]) -> OnnxRuntimeNet:
        return OnnxRuntimeNet(self.source, self.optimize)

    def __reduce__(self) -> tuple[Any, ...]:
        return (OnnxRuntimeNet, (self.source, self.optimize))

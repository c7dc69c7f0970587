"""The differentiable twin of an ONNX model that ONNX Runtime runs, driven in lockstep with the runtime.

ONNX Runtime has no autograd, so a white-box attack needs a twin: the same graph computed by torch ops
(``onnx_ops.py``), QuantizeLinear as fake quantization with a straight-through gradient. It is built from the ONNX
graph itself, so it mirrors whatever made the file (robustgate's export and ORT quantization, or a team's own
toolchain), and it follows the int8 protocol of robustgate's torch int8 models (``compressors/int8/lockstep.py``):

- an int8 graph is mirrored as ONNX Runtime runs it: the graph its CPU provider optimises (QDQ groups fused into
  QLinearConv, QGemm, ...: ``onnx_qlinear_ops.py``), saved by ORT itself;
- every int8 result on an activation is a rounding point (a :class:`Snap`, in integer codes, one step = 1);
  the optimised graph runs first on the same batch in ORT, with those tensors exposed as extra graph outputs, and
  each rounding point passes the runtime's own codes forward and its fake quantization's gradient backward;
- the logits are a rounding point too, fed by the shipped model's session: what the attack's loss sees is what
  ships;
- each rounding point tallies, per image, the share of values the twin computed to within one step from the
  runtime's own inputs (codes; for the logits, 1e-3 of their size, or one step of the grid they are dequantized
  from), which is the twin's agreement the attack contract gates (``min_twin_agreement``). An fp32 graph has only
  the logits to compare.

An operator the twin does not compute (a QOperator graph's QLinearConv, a contrib op) means no twin: the protocol
reports the missing leg, and fails closed unless the contract accepts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from robustgate.compressors.int8.lockstep import Lockstep, LockstepTwin, Snap
from robustgate.compressors.int8.twin import NoTwin
from robustgate.errors import first_line
from robustgate.runtimes.onnx_ops import ONNX_OPS, UnsupportedOp
from robustgate.runtimes.onnx_qlinear_ops import CODE_OUTPUTS, CONTRIB_OPS

if TYPE_CHECKING:
    import onnx

    from robustgate.runtimes.onnx import OnnxRuntimeNet

ONNX_DOMAINS = ("", "ai.onnx")  # the standard operator set; of com.microsoft's, only CONTRIB_OPS
# How close the twin's logits must come to the runtime's (relative to their largest magnitude, plus a floor): float
# reassociation between two correct implementations, as export's check allows (export.py's RTOL and ATOL).
LOGIT_RTOL, LOGIT_ATOL = 1e-3, 1e-4


class OnnxGraph(nn.Module):
    """An ONNX graph computed node by node with torch ops, with a :class:`Snap` on every int8 result of an
    activation (a QuantizeLinear's or a fused int8 operator's codes) and on the logits."""

    _snap_of: dict[str, Snap]

    def __init__(self, model: onnx.ModelProto, state: Lockstep, logit_step: float) -> None:
        super().__init__()
        from onnx import helper, numpy_helper

        graph = model.graph
        self.constants: dict[str, str] = {}  # ONNX name -> buffer name (ONNX names hold dots)
        element_types: dict[str, int] = {}
        for index, tensor in enumerate(graph.initializer):
            self.register_buffer(f"constant_{index}", torch.from_numpy(numpy_helper.to_array(tensor).copy()))
            self.constants[tensor.name] = f"constant_{index}"
            element_types[tensor.name] = tensor.data_type
        inputs = [entry.name for entry in graph.input if entry.name not in self.constants]
        self.input, self.output = inputs[0], graph.output[0].name
        self.nodes: list[tuple[str, list[str], list[str], dict[str, Any]]] = []
        dynamic, self.activation_codes = {self.input}, []
        for node in graph.node:
            where = f"{node.op_type} (node '{node.name or node.output[0]}')"
            known = node.op_type in CONTRIB_OPS if node.domain == "com.microsoft" else node.domain in ONNX_DOMAINS
            if not known or node.op_type not in ONNX_OPS:
                domain = f" of the {node.domain} domain" if node.domain not in ONNX_DOMAINS else ""
                raise NoTwin(f"robustgate's twin of an ONNX graph does not compute the operator {where}{domain}")
            attrs = {attr.name: _attribute(helper.get_attribute_value(attr)) for attr in node.attribute}
            if node.op_type == "Constant" and "value" in attrs:
                element_types[node.output[0]] = node.attribute[0].t.data_type
            codes = _zero_point_of(node)  # the output is integer codes: on the grid of this zero point
            if codes is not None:
                attrs["robustgate_code_type"] = attrs.get("output_dtype") or element_types.get(codes, 2)
            self.nodes.append((node.op_type, list(node.input), list(node.output), attrs))
            if any(name in dynamic for name in node.input):
                dynamic.update(node.output)
                if codes is not None:
                    self.activation_codes.append(node.output[0])
        self.code_type = {outputs[0]: attrs["robustgate_code_type"] for _, _, outputs, attrs in self.nodes if "robustgate_code_type" in attrs}
        snaps = [Snap(name, None, state, step=1.0) for name in self.activation_codes]
        self.snaps = nn.ModuleList(snaps)
        self.logits_snap = Snap(self.output, None, state, step=logit_step)
        self._snap_of = {snap.name: snap for snap in snaps}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, Any] = {name: getattr(self, buffer) for name, buffer in self.constants.items()}
        values[self.input] = x
        for op, inputs, outputs, attrs in self.nodes:
            try:
                results = ONNX_OPS[op]([values[name] if name else None for name in inputs], attrs)
            except UnsupportedOp as err:
                raise NoTwin(f"robustgate's twin of an ONNX graph does not compute {err}") from None
            for name, value in zip(outputs, results, strict=False):
                if name:
                    values[name] = self._snap_of[name](value) if name in self._snap_of else value
        return self.logits_snap(values[self.output].float())


def _zero_point_of(node: onnx.NodeProto) -> str | None:
    """The name of the zero point of ``node``'s output when that output is integer codes ("" for the default: uint8),
    or None when it is a float."""
    index = CODE_OUTPUTS.get(node.op_type)
    if index is None or (node.op_type == "QGemm" and (len(node.input) < 8 or not node.input[7])):
        return None  # a QGemm without an output scale gives floats
    return node.input[index] if len(node.input) > index else ""


def _attribute(value: Any) -> Any:
    """An ONNX attribute as the op table reads it: strings decoded, tensors as torch tensors."""
    from onnx import TensorProto, numpy_helper

    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, TensorProto):
        return torch.from_numpy(numpy_helper.to_array(value).copy())
    return value


def onnx_twin(net: OnnxRuntimeNet, example: torch.Tensor) -> LockstepTwin:
    """The lockstep twin of ``net`` (see the module docstring); ``example``: a batch of its inputs (normalised)."""
    import onnx

    from robustgate.runtimes.onnx import OnnxRuntimeNet

    model = onnx.load_from_string(net.source) if isinstance(net.source, bytes) else onnx.load(str(net.source))
    quantized = any(node.op_type in CODE_OUTPUTS for node in model.graph.node)
    if quantized:  # the graph ORT runs: its int8 ops fused as its kernels compute them (onnx_qlinear_ops.py)
        model = onnx.load_from_string(net.optimized_graph())
    with torch.no_grad():
        logits = net(example)
    step = max(LOGIT_RTOL * float(logits.abs().max()) + LOGIT_ATOL, _output_grid(model))
    state = Lockstep()
    try:
        graph = OnnxGraph(model, state, step).eval()
    except NoTwin:
        raise
    except Exception as err:  # a malformed attribute or initializer: a reason, not a traceback
        raise NoTwin(f"building the twin of the ONNX graph failed: {first_line(err)}") from None
    # The optimised graph with its codes exposed, run as it is (optimising it again could fuse differently)
    codes = OnnxRuntimeNet(_with_codes_as_outputs(model, graph).SerializeToString(), optimize=False) if graph.activation_codes else None

    def reference(x: torch.Tensor) -> dict[str, torch.Tensor]:
        values = {graph.output: net(x)}  # the shipped model's logits
        if codes is not None:
            values.update({name: value.float() for name, value in codes.named_outputs(x).items() if name in graph.code_type})
        return values

    return LockstepTwin(graph, reference, state)


def _output_grid(model: onnx.ModelProto) -> float:
    """The step of the int8 grid the logits are dequantized from (0.0 when they are floats): the logits of an int8
    graph are an int8 layer, judged as every other one, to within one step. (ORT's fused kernels at its default level
    and the saved optimised graph round such a layer one step apart now and then: seen on one image in 96.)"""
    from onnx import numpy_helper

    producer = next((node for node in model.graph.node if model.graph.output[0].name in node.output), None)
    if producer is None or producer.op_type != "DequantizeLinear":
        return 0.0
    scale = next((tensor for tensor in model.graph.initializer if tensor.name == producer.input[1]), None)
    return float(numpy_helper.to_array(scale).max()) if scale is not None else 0.0


def _with_codes_as_outputs(model: onnx.ModelProto, graph: OnnxGraph) -> onnx.ModelProto:
    """A copy of ``model`` whose activation QuantizeLinear codes are graph outputs too, so the runtime reports them."""
    from onnx import helper

    exposed = type(model)()
    exposed.CopyFrom(model)
    for name in graph.activation_codes:
        exposed.graph.output.append(helper.make_tensor_value_info(name, graph.code_type[name], None))
    return exposed

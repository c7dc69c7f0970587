"""ONNX files the tests make from a real network: torch.onnx's exporter, then ONNX Runtime's static int8 quantizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


def export_onnx(net: nn.Module, example: torch.Tensor, path: Path, dynamic_batch: bool = True) -> Path:
    """``net`` as an fp32 ONNX model (the dynamo exporter, as torch recommends), batch dimension dynamic unless told."""
    shapes = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    torch.onnx.export(net.eval(), (example,), str(path), dynamo=True, dynamic_shapes=shapes, verbose=False)
    return path


def quantize_onnx(fp32: Path, path: Path, calibration: torch.Tensor, operator_form: bool = False) -> Path:
    """ONNX Runtime's static int8 quantization of ``fp32``, calibrated on ``calibration`` (the network's own input:
    already normalised): QDQ pairs around each op by default, fused QOperator ops (QLinearConv, ...) if asked."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            import onnx

            name = onnx.load(str(fp32)).graph.input[0].name
            self.batches = iter([{name: batch.numpy().astype(np.float32)} for batch in calibration.split(32)])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    quantize_static(
        str(fp32), str(path), Batches(), quant_format=QuantFormat.QOperator if operator_form else QuantFormat.QDQ,
        per_channel=True, activation_type=QuantType.QUInt8 if operator_form else QuantType.QInt8,
        # 7-bit weights, as a team shipping to x86 does: full-range int8 weights saturate the 16-bit sums of x86
        # int8 kernels on CPUs without VNNI (this machine's kind among them: accuracy 0.94 instead of 0.99)
        reduce_range=True,
        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
    )
    return path


def op_types(path: Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}

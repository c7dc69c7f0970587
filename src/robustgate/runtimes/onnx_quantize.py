"""ONNX Runtime's static int8 quantizer, calibrated on the spec's images: ``ptq: {backend: onnxruntime}``.

What a team that ships through ONNX Runtime runs itself (``onnxruntime.quantization.quantize_static``), so the
int8 model gated is the one its tools make: QDQ pairs around each op (``format: qdq``, ORT's recommendation on
CPU) and int8 activations and weights. Written here only to feed it robustgate's calibration images and options.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# robustgate's observer names -> ORT's calibration methods: min/max as read; the histogram observer (a range that
# clips rare outliers to cut the quantization error) -> ORT's histogram percentile (99.999% of |x|); ORT's Entropy
# gave min/max's very ranges on the test network with symmetric int8 activations, so it is not used; a moving
# average of min/max is MinMax with ORT's CalibMovingAverage option.
CALIBRATION = {"minmax": ("MinMax", False), "histogram": ("Percentile", False), "moving_average": ("MinMax", True)}


def quantize_static_onnx(
    fp32: bytes, batches: Iterator[torch.Tensor], observer: str, per_channel: bool, reduce_range: bool = True,
) -> bytes:
    """The int8 QDQ model of the serialized fp32 model ``fp32``, its activation ranges read on ``batches``
    (the network's own input, already normalised); ``reduce_range``: 7-bit weights (see ``PTQParams.reduce_range``)."""
    import numpy as np
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    name = onnx.load_from_string(fp32).graph.input[0].name
    method, moving_average = CALIBRATION[observer]

    class Images(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(batches, None)
            return None if batch is None else {name: batch.detach().cpu().numpy().astype(np.float32)}

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(fp32)
        quantize_static(
            str(source), str(target), Images(), quant_format=QuantFormat.QDQ, per_channel=per_channel, reduce_range=reduce_range,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, method),
            extra_options={"CalibMovingAverage": moving_average},
        )
        return target.read_bytes()

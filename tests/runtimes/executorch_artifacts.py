"""ExecuTorch programs the tests make from a real network, the way ExecuTorch's documentation has a team make them."""

from __future__ import annotations

import copy
from pathlib import Path

import torch


def lower_int8_as_a_team_does(net: torch.nn.Module, calibration: torch.Tensor, path: Path) -> Path:
    """ExecuTorch's documented XNNPACK int8 flow: PT2E with the XNNPACKQuantizer, then to_edge_transform_and_lower."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config
    from executorch.exir import to_edge_transform_and_lower
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    example, batch = (calibration[:16],), ({0: torch.export.Dim("batch", min=1, max=64)},)
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(copy.deepcopy(net).eval(), example, dynamic_shapes=batch).module(), quantizer)
    for chunk in calibration.split(32):
        prepared(chunk)
    converted = torch.export.export(convert_pt2e(prepared), example, dynamic_shapes=batch)
    path.write_bytes(to_edge_transform_and_lower(converted, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)
    return path

"""Static int8 in eager mode (torch.ao): the model marks where int8 begins and ends (QuantStub,
DeQuantStub) and does tensor arithmetic through FloatFunctional, so int8 adds have a module.

torchvision ResNets (any depth, pruned or narrowed too) are converted here into torchvision's own
quantizable twin (``torchvision.models.quantization``), which has those pieces and a ``fuse_model``;
a user model that already contains a QuantStub is taken as it is.
"""

from __future__ import annotations

import inspect

import torch
import torchvision
from torch import nn

from robustgate.compressors.int8.observers import static_qconfig
from robustgate.compressors.int8.params import PTQParams
from robustgate.compressors.int8.path import quantization_paths
from robustgate.compressors.int8.torch_ao import TorchAOPath
from robustgate.errors import CompressionError


class EagerPath(TorchAOPath):
    def prepare(self, net: nn.Module, params: PTQParams, example: torch.Tensor) -> nn.Module:
        from torch.ao.quantization import prepare

        net = eager_ready(net).eval()
        fuse = getattr(net, "fuse_model", None)  # torchvision's convention: fuse conv+bn(+relu) in place
        if fuse is not None and "is_qat" in inspect.signature(fuse).parameters:
            fuse(is_qat=False)
        elif fuse is not None:
            fuse()
        net.qconfig = static_qconfig(params)
        return prepare(net, inplace=True)

    def convert(self, prepared: nn.Module, params: PTQParams) -> nn.Module:
        from torch.ao.quantization import convert

        return convert(prepared, inplace=True)


def eager_ready(net: nn.Module) -> nn.Module:
    """``net`` in a form eager-mode quantization can handle, or a CompressionError saying why not."""
    from torch.ao.quantization import QuantStub

    if any(isinstance(m, QuantStub) for m in net.modules()):
        return net
    if type(net) is torchvision.models.ResNet:
        return _quantizable_resnet(net)
    raise CompressionError(
        f"ptq: method: eager cannot quantize a {type(net).__name__}: eager mode needs QuantStub/DeQuantStub "
        "around the int8 part and FloatFunctional for additions, and robustgate adds them only to torchvision ResNets",
        hint="use method: fx (any traceable model) or backend: pt2e, or add the stubs to your model "
        "(see torchvision.models.quantization for examples)",
    )


def _quantizable_resnet(net: torchvision.models.ResNet) -> nn.Module:
    """torchvision's QuantizableResNet with ``net``'s own layers moved in, so pruned or narrowed
    channel counts carry over: only the block wiring (FloatFunctional adds, stubs) comes from the twin."""
    from torchvision.models.quantization.resnet import QuantizableBasicBlock, QuantizableBottleneck, QuantizableResNet
    from torchvision.models.resnet import BasicBlock

    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    block = QuantizableBasicBlock if isinstance(stages[0][0], BasicBlock) else QuantizableBottleneck
    twin = QuantizableResNet(
        block, [len(stage) for stage in stages], num_classes=net.fc.out_features,
        groups=net.groups, width_per_group=net.base_width,
    )
    layers = {name: m for name, m in net.named_modules() if _has_tensors(m)}
    slots = {name for name, m in twin.named_modules() if _has_tensors(m)}
    if set(layers) != slots:  # a ResNet whose layers were renamed or replaced: the twin would drop them
        raise CompressionError(
            f"ptq: method: eager cannot map this ResNet onto torchvision's quantizable ResNet "
            f"(layers differ: {sorted(set(layers) ^ slots)[:4]})",
            hint="use method: fx or backend: pt2e",
        )
    for name, module in layers.items():
        owner, _, attr = name.rpartition(".")
        setattr(twin.get_submodule(owner) if owner else twin, attr, module)
    return twin.eval()


def _has_tensors(module: nn.Module) -> bool:
    return not list(module.children()) and bool(list(module.parameters(recurse=False)) or list(module.buffers(recurse=False)))


quantization_paths.register("eager")(EagerPath())

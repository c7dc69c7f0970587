"""Static int8 in eager mode (torch.ao): the model marks where int8 begins and ends (QuantStub,
DeQuantStub) and does tensor arithmetic through FloatFunctional, so int8 adds have a module.

The torchvision families torchvision ships quantizable twins of (``torchvision.models.quantization``:
ResNet, MobileNetV2/V3, ShuffleNetV2, GoogLeNet; pruned or narrowed too) are moved into those
twins, which have the pieces and a ``fuse_model``; a user model that already contains a QuantStub
is taken as it is. Other architectures (EfficientNet, RegNet, ConvNeXt, ...) need FX or PT2E.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from robustgate.compressors.int8.observers import static_qconfig
from robustgate.compressors.int8.params import PTQParams
from robustgate.compressors.int8.path import quantization_paths
from robustgate.compressors.int8.torch_ao import TorchAOPath
from robustgate.errors import CompressionError

if TYPE_CHECKING:  # torchvision is imported at the first quantization, not when specs are read (and is untyped: Any)
    from torchvision.models import GoogLeNet, MobileNetV2, MobileNetV3, ResNet, ShuffleNetV2


class EagerPath(TorchAOPath[nn.Module]):
    def prepare(self, net: nn.Module, params: PTQParams, example: torch.Tensor) -> nn.Module:
        from torch.ao.quantization import prepare

        net = eager_ready(net).eval()
        own = _fusers().get(type(net))
        fuse = getattr(net, "fuse_model", None)  # torchvision's convention: fuse conv+bn(+relu) in place
        if own is not None:
            own(net)
        elif fuse is not None and "is_qat" in inspect.signature(fuse).parameters:
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
    family = _quantizable().get(type(net))
    if family is None:
        raise CompressionError(
            f"ptq: method: eager cannot quantize a {type(net).__name__}: eager mode needs QuantStub/DeQuantStub "
            "around the int8 part and FloatFunctional for tensor arithmetic, and robustgate adds them only to the "
            f"torchvision families torchvision ships quantizable twins of ({', '.join(sorted(c.__name__ for c in _quantizable()))})",
            hint="use method: fx (any traceable model) or backend: pt2e, or add the stubs to your model "
            "(see torchvision.models.quantization for examples)",
        )
    builder, wiring = family
    return _moved_into(net, builder(net), _PLUMBING + wiring)


def _moved_into(net: nn.Module, twin: nn.Module, wiring: tuple[type, ...]) -> nn.Module:
    """``twin`` (torchvision's quantizable class of ``net``'s family) holding ``net``'s own leaf modules, so
    pruned or narrowed channel counts and the activations ``net`` was built with carry over: only the
    block wiring (FloatFunctional arithmetic, stubs; ``wiring`` types) comes from the twin."""
    leaves = {name: m for name, m in net.named_modules() if name and not list(m.children())}
    slots = {name: m for name, m in twin.named_modules() if name and not list(m.children())}
    plumbing = [name for name, m in twin.named_modules() if isinstance(m, wiring)]
    extra = {name for name in slots if name not in leaves and not any(name == p or name.startswith(f"{p}.") for p in plumbing)}
    if set(leaves) - set(slots) or extra:  # a network whose layers were renamed or replaced: the twin would drop them
        raise CompressionError(
            f"ptq: method: eager cannot map this {type(net).__name__} onto torchvision's quantizable one "
            f"(layers differ: {sorted((set(leaves) - set(slots)) | extra)[:4]})",
            hint="use method: fx or backend: pt2e",
        )
    for name, module in leaves.items():
        owner, _, attr = name.rpartition(".")
        setattr(twin.get_submodule(owner) if owner else twin, attr, module)
    containers = dict(net.named_modules())
    for name, module in twin.named_modules():  # block flags built from the float config (use_res_connect, ...)
        source = containers.get(name)
        if source is not None and list(module.children()):
            for key, value in vars(source).items():
                if isinstance(value, (bool, int, float, str)) and key in vars(module):
                    setattr(module, key, value)
    return twin.eval()


def _resnet(net: ResNet) -> nn.Module:
    from torchvision.models.quantization.resnet import QuantizableBasicBlock, QuantizableBottleneck, QuantizableResNet
    from torchvision.models.resnet import BasicBlock

    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    block = QuantizableBasicBlock if isinstance(stages[0][0], BasicBlock) else QuantizableBottleneck
    return QuantizableResNet(
        block, [len(stage) for stage in stages], num_classes=net.fc.out_features,
        groups=net.groups, width_per_group=net.base_width,
    )


def _mobilenet_v2(net: MobileNetV2) -> nn.Module:
    from torchvision.models.quantization.mobilenetv2 import QuantizableInvertedResidual, QuantizableMobileNetV2

    return QuantizableMobileNetV2(num_classes=net.classifier[-1].out_features, block=QuantizableInvertedResidual)


def _fuse_mobilenet_v2(twin: nn.Module) -> None:
    """torchvision's fuse_model fuses conv+bn+ReLU6 as if it were ReLU (its builder swaps ReLU6 for ReLU, which
    changes the function); here conv+bn fuse and ReLU6 stays a quantized ReLU6, as in the fp32 model."""
    from torch.ao.quantization import fuse_modules
    from torchvision.models.quantization.mobilenetv2 import QuantizableInvertedResidual
    from torchvision.ops.misc import Conv2dNormActivation

    for module in twin.modules():
        if isinstance(module, Conv2dNormActivation):
            fuse_modules(module, ["0", "1", "2"] if type(module[2]) is nn.ReLU else ["0", "1"], inplace=True)
        elif isinstance(module, QuantizableInvertedResidual):
            module.fuse_model(is_qat=False)


def _mobilenet_v3(net: MobileNetV3) -> nn.Module:
    from torchvision.models.mobilenetv3 import _mobilenet_v3_conf
    from torchvision.models.quantization.mobilenetv3 import QuantizableInvertedResidual, QuantizableMobileNetV3

    size = "mobilenet_v3_large" if len(net.features) == 17 else "mobilenet_v3_small"  # 15 or 11 blocks between two convs
    setting, last_channel = _mobilenet_v3_conf(size)
    return QuantizableMobileNetV3(
        setting, last_channel, num_classes=net.classifier[-1].out_features, block=QuantizableInvertedResidual
    )


def _shufflenet_v2(net: ShuffleNetV2) -> nn.Module:
    from torchvision.models.quantization.shufflenetv2 import QuantizableShuffleNetV2

    repeats = [len(net.stage2), len(net.stage3), len(net.stage4)]
    return QuantizableShuffleNetV2(repeats, list(net._stage_out_channels), num_classes=net.fc.out_features)


def _googlenet(net: GoogLeNet) -> nn.Module:
    from torchvision.models.quantization.googlenet import QuantizableGoogLeNet

    return QuantizableGoogLeNet(
        num_classes=net.fc.out_features, aux_logits=net.aux_logits, transform_input=net.transform_input, init_weights=False
    )


@functools.cache
def _quantizable() -> dict[type, tuple]:
    """Each family's builder, and the layers its quantizable twin adds besides stubs and FloatFunctional
    (torchvision is imported here, at the first quantization, not when specs are read)."""
    import torchvision

    return {
        torchvision.models.ResNet: (_resnet, ()),
        torchvision.models.MobileNetV2: (_mobilenet_v2, ()),
        torchvision.models.MobileNetV3: (_mobilenet_v3, ()),
        torchvision.models.ShuffleNetV2: (_shufflenet_v2, ()),
        torchvision.models.GoogLeNet: (_googlenet, (nn.ReLU,)),  # a module for the F.relu each BasicConv2d calls
    }


@functools.cache
def _fusers() -> dict[type, Any]:
    """Families whose torchvision fuse_model would change the function."""
    from torchvision.models.quantization.mobilenetv2 import QuantizableMobileNetV2

    return {QuantizableMobileNetV2: _fuse_mobilenet_v2}


def _plumbing() -> tuple[type, ...]:
    from torch.ao.nn.quantized import FloatFunctional
    from torch.ao.quantization import DeQuantStub, QuantStub

    return QuantStub, DeQuantStub, FloatFunctional


_PLUMBING = _plumbing()


quantization_paths.register("eager")(EagerPath())

"""L1-norm structured filter pruning (Li et al. 2017, "Pruning Filters for Efficient ConvNets").

Whole output channels (filters) are removed, not masked: Torch-Pruning's
dependency graph (DepGraph, Fang et al. 2023) finds every layer a channel
couples (the BatchNorm after a conv, the next layer's input kernels, the other
branch of a residual add) and cuts them together, so the pruned network is a
smaller, ordinary ``nn.Module`` with smaller weight tensors, fewer MACs and
lower latency. The layer that produces the logits is never pruned.

``method: l1`` ranks a layer's channels by L1 magnitude as Torch-Pruning's
``MagnitudeImportance(p=1)`` computes it: averaged over every weight the channel
owns in its group (the filter, its BatchNorm scale, the next layer's input
kernels), the group-level form of Li et al.'s filter norm. On a BatchNorm CNN
trained on the digits it kept 0.21 accuracy at ratio 0.5 before fine-tuning,
where the filter norm alone (``group_reduction="first"``) kept 0.11.

L1 ranking is deterministic given the parent's weights, so the cache stores
only the pruned network's state_dict (plain tensors); :meth:`PruneStep.restore`
prunes the parent again to rebuild the architecture and loads that state into it.
"""

from __future__ import annotations

import copy
import math
import traceback
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from robustgate.compressors.base import CompressionStep, StepContext, compression_steps, load_into_rebuilt, net_state
from robustgate.errors import CompressionError, ModelError, first_line
from robustgate.registry import did_you_mean
from robustgate.spec.fields import DatasetRef, Params
from robustgate.spec.model import TrainParams

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.nn.modules.conv import _ConvNd

    Prunable = nn.Linear | _ConvNd
    """The layers whose output widths pruning cuts (out_features, out_channels)."""

    from robustgate.models.classifier import Classifier


class FinetuneParams(Params):
    """Training after pruning, with the baseline's loop (AdamW, one-cycle schedule, random shifts) and the spec's seed."""

    on: DatasetRef
    epochs: int = Field(1, ge=1, le=10_000)
    lr: float = Field(1e-3, gt=0)  # peak of the one-cycle schedule
    batch_size: int = Field(64, ge=1)


class PruneParams(Params):
    """``prune: {method: l1, ratio: R, scope: layer, keep: [...], finetune: {...}}``.

    ``ratio`` is the share of output channels (filters) removed from every prunable
    layer: a layer of C channels keeps floor(C x (1 - ratio)). A conv's weight is
    out x in x k x k and both sides shrink, so parameters and MACs fall roughly as
    (1 - ratio)^2 (ratio 0.5 leaves about a quarter), not as (1 - ratio).
    ``scope: global`` ranks all channels of the network together instead, so the
    ratio holds for the network as a whole and layers lose different shares.
    ``keep`` names modules (as in ``net.named_modules()``, e.g. ``conv1`` or ``layer4``)
    whose output channels are never pruned; the logits layer is always kept.
    """

    method: Literal["l1"]
    ratio: float = Field(gt=0, lt=1)
    scope: Literal["layer", "global"] = "layer"
    keep: tuple[str, ...] = Field((), strict=False)  # YAML gives a list; a tuple keeps the params hashable
    finetune: FinetuneParams | None = None


class PruneStep(CompressionStep):
    """Structured L1 filter pruning of a copy of the parent's network, on the CPU, optionally fine-tuned."""

    Params = PruneParams
    preserves_macs = False
    differentiable = True

    def apply(self, model: Classifier, params: PruneParams, ctx: StepContext) -> Classifier:
        before = count_parameters(model.net)
        pruned = prune_channels(model, params, ctx)
        ctx.progress(
            f"prune: l1, ratio {params.ratio} ({params.scope} scope) kept {count_parameters(pruned.net):,} of {before:,} parameters"
        )
        if params.finetune is not None:
            self._finetune(pruned, params.finetune, ctx)
        return pruned.eval()

    def state(self, model: Classifier) -> dict[str, Any]:
        return net_state(model)

    def restore(self, parent: Classifier, params: PruneParams, state: dict[str, Any], ctx: StepContext) -> Classifier:
        return load_into_rebuilt(prune_channels(parent, params, ctx), state, "prune")

    # -- pruning ------------------------------------------------------------

    def _finetune(self, model: Classifier, params: FinetuneParams, ctx: StepContext) -> None:
        import torch  # torch only when pruning: validating a spec must not import it

        from robustgate.models.train import train_classifier

        data = ctx.dataset(params.on)
        with torch.no_grad():
            logits = model.eval()(ctx.example[:1].cpu()).shape[1]
        if len(data.classes) != logits:
            raise CompressionError(
                f"prune: fine-tuning set '{params.on}' has {len(data.classes)} classes but the model outputs {logits} logits",
                hint=f"fine-tune on a dataset with the model's {logits} classes (usually the baseline's training set)",
            )
        epochs = f"{params.epochs} epoch{'s' if params.epochs != 1 else ''}"
        ctx.progress(f"prune: fine-tuning on '{params.on}' ({len(data)} images, {epochs})")
        train = TrainParams(on=params.on, epochs=params.epochs, batch_size=params.batch_size, lr=params.lr)
        try:
            train_classifier(
                model, data, train, seed=ctx.seed, device=ctx.device,
                progress=lambda message: ctx.progress(f"prune: fine-tuning {message}"),
            )
        except ModelError as err:
            raise CompressionError(
                f"prune: fine-tuning failed: {err.message}", hint="lower finetune: lr, or check the fine-tuning dataset"
            ) from None
        model.cpu().eval()  # steps hand back CPU models (what the cache stores)


def prune_channels(model: Classifier, params: PruneParams, ctx: StepContext) -> Classifier:
    """A pruned copy of ``model`` (same normalisation, smaller net); the parent is left as it is."""
    import torch
    import torch_pruning as tp

    if not any(p.is_floating_point() for p in model.net.parameters()):
        raise CompressionError(
            f"prune: {type(model.net).__name__} has no floating-point weights to prune (an int8 model?)",
            hint="int8 kernels cannot be pruned: put prune before ptq in the variant",
        )
    net = copy.deepcopy(model.net).cpu().eval().requires_grad_(True)  # tracing follows autograd
    pruned = model.with_net(net)
    with torch.no_grad():
        example = pruned.normalize(ctx.example.cpu())
    head, logits = _logits_layer(net, example)
    kept = [head] + [_named_module(net, name) for name in params.keep]
    rejected: list[Prunable] = []
    groups = 0
    try:
        with torch.enable_grad():
            pruner = tp.pruner.MetaPruner(
                net,
                example,
                importance=tp.importance.MagnitudeImportance(p=1),
                pruning_ratio=params.ratio,
                global_pruning=params.scope == "global",
                ignored_layers=kept,
            )
            _record_rejections(pruner, rejected)
            for group in pruner.step(interactive=True):
                group.prune()
                groups += 1
    except CompressionError:
        raise
    except Exception as err:  # DepGraph tracing or index mapping failed on an op it does not know
        if any(frame.name == "update_reshape_index_mapping" for frame in traceback.extract_tb(err.__traceback__)):
            raise CompressionError(
                f"prune: Torch-Pruning cannot map channels through a reshape that splits the channel dimension in "
                f"{type(net).__name__} (a channel shuffle, as in ShuffleNet; VainF/Torch-Pruning#14), so it cannot "
                "say which channels of the layers around it belong together",
                hint="prune another architecture, or for a smaller ShuffleNet use a narrower torchvision build "
                "(e.g. shufflenet_v2_x0_5) as a distill: student at width 1",
            ) from None
        raise CompressionError(
            f"prune: Torch-Pruning cannot trace or prune {type(net).__name__}: {first_line(err)}",
            hint="structured pruning needs a forward() built from standard torch modules and ops; "
            "name the layers it trips over under keep:, or prune another architecture",
        ) from None
    if rejected:
        raise _too_high(params, rejected, net)
    if groups == 0:
        raise CompressionError(
            f"prune: Torch-Pruning found no channel it can remove in {type(net).__name__}",
            hint="pruning needs Conv/Linear layers outside keep: and the logits layer, and a forward() that runs "
            "with autograd (not under torch.no_grad)",
        )
    _check_output(pruned, ctx.example, logits)
    return pruned


def _logits_layer(net: nn.Module, example: torch.Tensor) -> tuple[nn.Module, int]:
    """The last Linear/Conv layer the forward pass runs whose outputs are the logits, and the logit count."""
    import torch
    from torch import nn

    prunable = (nn.Linear, nn.modules.conv._ConvNd)
    called: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, i, o: called.append(m)) for m in net.modules() if isinstance(m, prunable)]
    try:
        with torch.no_grad():
            out = net(example)
    except Exception as err:  # the parent was evaluated on this geometry already; this is a guard
        raise CompressionError(f"prune: the network fails on the example input: {first_line(err)}") from None
    finally:
        for hook in hooks:
            hook.remove()
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise CompressionError("prune: the network does not return batch x classes logits, so its head cannot be found")
    logits = int(out.shape[1])
    for module in reversed(called):
        width = module.out_features if isinstance(module, nn.Linear) else module.out_channels
        if width == logits:
            return module, logits
    raise CompressionError(
        f"prune: no Linear or Conv layer of the network outputs its {logits} logits, so the classifier head "
        "cannot be protected from pruning",
        hint="pruning needs a model whose logits come from a Linear or Conv layer",
    )


def _named_module(net: nn.Module, name: str) -> nn.Module:
    modules = dict(net.named_modules())
    modules.pop("", None)
    if name not in modules:
        raise CompressionError(
            f"prune: keep names '{name}', which is not a module of the network; {did_you_mean(name, list(modules))}",
            hint="keep: takes module names as net.named_modules() lists them, e.g. conv1 or layer4.1.conv2",
        )
    return modules[name]


def _record_rejections(pruner: Any, rejected: list[Prunable]) -> None:
    """Torch-Pruning silently skips a layer when the ratio would remove all its channels; record those skips.

    Its ``_prune`` keeps floor(C x (1 - ratio)) channels, and when that is 0 its
    ``check_pruning_group`` refuses the whole group, which then stays unpruned.
    """
    check = pruner.DG.check_pruning_group

    def checked(group: Any) -> bool:
        if check(group):
            return True
        rejected.append(group[0].dep.target.module)
        return False

    pruner.DG.check_pruning_group = checked


def _too_high(params: PruneParams, rejected: list[Prunable], net: nn.Module) -> CompressionError:
    from torch import nn

    names = {module: name for name, module in net.named_modules()}
    widths = {names.get(m, type(m).__name__): m.out_features if isinstance(m, nn.Linear) else m.out_channels for m in rejected}
    listed = ", ".join(f"'{name}' ({width} channels)" for name, width in list(widths.items())[:3])
    more = f" and {len(widths) - 3} more" if len(widths) > 3 else ""
    if params.scope == "layer":
        narrowest = min(widths.values())
        bound = math.floor((1 - 1 / narrowest) * 1000) / 1000
        return CompressionError(
            f"prune: ratio {params.ratio} would remove every output channel of {listed}{more}: a layer of C channels "
            "keeps floor(C x (1 - ratio)) of them",
            hint=f"use ratio <= {bound} (the narrowest such layer has {narrowest} channels), or add the layer to keep:",
        )
    return CompressionError(
        f"prune: with scope: global, ratio {params.ratio} ranks every output channel of {listed}{more} below the cut",
        hint="lower the ratio, use scope: layer, or add the layer to keep:",
    )


def _check_output(pruned: Classifier, example: torch.Tensor, logits: int) -> None:
    import torch

    try:
        with torch.no_grad():
            out = pruned.eval()(example.cpu())
    except Exception as err:
        raise CompressionError(
            f"prune: the pruned network fails on the example input: {first_line(err)}",
            hint="its forward() probably hard-codes a channel count (e.g. x.view(-1, 512)); use flatten() or "
            "name the layer under keep:",
        ) from None
    if tuple(out.shape) != (example.shape[0], logits):
        raise CompressionError(
            f"prune: the pruned network returns shape {list(out.shape)} instead of {[example.shape[0], logits]}",
            hint="its forward() probably hard-codes a channel count; name the layer under keep:",
        )


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


compression_steps.register("prune")(PruneStep())

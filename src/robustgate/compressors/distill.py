"""Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

A new, smaller *student* network is trained to match the softened outputs of the
*teacher*, the model entering the step (the spec's baseline, or what earlier
steps of the variant made of it, e.g. a pruned copy). The loss per batch is::

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
        + (1 - alpha) * cross_entropy(student, labels)

so **alpha weights the distillation (soft-target) term** and ``1 - alpha`` the
ordinary hard-label term: ``alpha: 1`` learns from the teacher alone, ``alpha: 0``
is plain supervised training of the student. Libraries differ here (some weight
the hard-label term with alpha, some drop the T^2 factor that keeps the soft
term's gradients on the scale of the hard term's as T grows); robustgate follows
Hinton et al. and the common PyTorch recipes with alpha on the soft term.

The teacher only runs forward passes, under ``torch.inference_mode`` on the CPU,
so it may be any model: a non-differentiable int8 one included. The student is
built from ``student: {arch, kwargs}`` under the spec's seed; ``width: W < 1``
shrinks every prunable layer's output channels to the share W before training
(Torch-Pruning's dependency graph, as the ``prune`` step does it, so residual
connections stay consistent and the logits layer keeps its classes). The student
sits behind the teacher's input normalisation.

Building and shrinking are deterministic given the seed, so the cache stores only
the trained student's state_dict (plain tensors) and :meth:`DistillStep.restore`
rebuilds the architecture to load it into.
"""

from __future__ import annotations

import copy
import math
import time
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from robustgate.checkpoints import is_pretrained
from robustgate.compressors.base import CompressionStep, StepContext, compression_steps, load_into_rebuilt, net_state
from robustgate.compressors.prune import PruneParams, count_parameters, prune_channels
from robustgate.errors import CompressionError, ModelError, first_line
from robustgate.progress import bar
from robustgate.spec.factories import arch_json_schema, architecture_problem
from robustgate.spec.fields import DatasetRef, Params

if TYPE_CHECKING:
    from robustgate.data.imageset import ImageSet
    from robustgate.models.classifier import Classifier

_WEIGHT_DECAY = 5e-4  # the baseline loop's AdamW default (train: weight_decay)


class StudentParams(Params):
    """``student: {arch: ..., kwargs: {...}, width: W}``: the network distilled into.

    ``arch`` and ``kwargs`` take the same values as ``model:`` does (a torchvision
    name or ``package.module:factory``); ``kwargs`` must make it output the teacher's
    class count (e.g. ``num_classes: 10``). ``width`` in (0, 1] is the share of output
    channels every prunable layer keeps (floor(C x width)), the logits layer excepted.
    ``weights: imagenet`` (or a torchvision entry name) starts the student from
    torchvision's ImageNet weights, read offline as ``model: weights:`` reads them,
    its classifier head resized to the class count; narrowing then keeps the filters
    of largest L1 norm, as pruning would.
    """

    arch: str = Field(min_length=1, json_schema_extra=arch_json_schema)
    kwargs: dict[str, Any] = {}
    width: float = Field(1.0, gt=0, le=1)
    weights: str | None = None  # imagenet (or a torchvision weights name): start from them, as the baseline can

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str) -> str:
        problem = architecture_problem(arch)  # torchvision names only: user factories are not imported here
        if problem:
            raise ValueError(problem)
        return arch

    @model_validator(mode="after")
    def _known_weights(self) -> "StudentParams":
        if self.weights is None:
            return self
        if not is_pretrained(self.weights):
            raise ValueError(f"student weights: {self.weights!r} is not torchvision's; give imagenet or an entry "
                             "name such as IMAGENET1K_V1, or leave it out to start from a random init")
        from robustgate.models.pretrained import resolve  # torchvision's weights enums: only for such students

        try:  # the name only: whether the file is on this machine is a run-time question
            resolve(self.arch, self.weights)
        except ModelError as err:
            raise ValueError(err.message) from None
        return self


class DistillParams(Params):
    """``distill: {student: {...}, on: DATASET, temperature: T, alpha: A, epochs: N, lr: ..., batch_size: ...}``.

    ``on`` defaults to the baseline's training set. ``alpha`` weights the soft
    (teacher) term, ``1 - alpha`` the hard-label term; ``temperature`` softens both
    output distributions in the soft term. The student trains with the baseline's
    loop: AdamW, a one-cycle schedule peaking at ``lr``, random shifts, the spec's seed.
    """

    student: StudentParams
    on: DatasetRef | None = None
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.9, ge=0, le=1)
    epochs: int = Field(6, ge=1, le=10_000)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, ge=1)


class DistillStep(CompressionStep):
    """Train a (narrower) student on the teacher's softened outputs, on the CPU."""

    Params = DistillParams
    preserves_macs = False
    differentiable = True

    def apply(self, model: Classifier, params: DistillParams, ctx: StepContext) -> Classifier:
        import torch  # torch only when distilling: validating a spec must not import it

        teacher = model if not model.training else copy.deepcopy(model).eval()
        logits = _logit_count(teacher, ctx, "the teacher")
        student = self._student(model, params, ctx, logits)  # before loading data: a bad student fails fast
        name, data = self._data(params, ctx, logits)
        ctx.progress(
            f"distill: student {params.student.arch} at width {params.student.width} has {count_parameters(student.net):,} "
            f"parameters (teacher {count_parameters(teacher.net):,}); training on '{name}' ({len(data)} images, "
            f"{params.epochs} epoch{'s' if params.epochs != 1 else ''})"
        )
        cuda = [ctx.device.index or 0] if ctx.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # dropout on the device draws from its own generator
            torch.manual_seed(ctx.seed)
            try:
                self._train(student, teacher, data, params, ctx)
            except CompressionError:
                raise
            except (RuntimeError, ValueError) as err:  # shapes, memory, numerics: one message, not torch's traceback
                raise CompressionError(
                    f"distill: training the student failed: {first_line(err)}",
                    hint="check the student's arch and kwargs against the model's input size",
                ) from None
        return student.eval()

    def state(self, model: Classifier) -> dict[str, Any]:
        return net_state(model)

    def restore(self, parent: Classifier, params: DistillParams, state: dict[str, Any], ctx: StepContext) -> Classifier:
        return load_into_rebuilt(self._student(parent, params, ctx, None, pretrained=False), state, "distill")

    def external_inputs(self, params: DistillParams, ctx: StepContext | None = None) -> tuple[str, ...]:
        if params.student.weights is None:
            return ()
        from robustgate.models.pretrained import checkpoint_path, resolve

        path = checkpoint_path(resolve(params.student.arch, params.student.weights))
        if not path.is_file():  # reported when the student is built; the key only needs to differ from a present one's
            return (f"student-weights:{path.name}:absent",)
        from robustgate.cache import versioned_file_digest

        return (f"student-weights:{path.name}:{versioned_file_digest(path)}",)

    # -- the student ---------------------------------------------------------

    def _student(
        self, parent: Classifier, params: DistillParams, ctx: StepContext, logits: int | None, pretrained: bool = True,
    ) -> Classifier:
        """The untrained student behind the parent's normalisation: built under the seed, loaded with its
        pretrained weights (not when restoring: the cached state replaces them), then narrowed."""
        import torch

        from robustgate.models.architectures import build_network

        spec = params.student
        with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
            torch.manual_seed(ctx.seed)
            net = build_network(spec.arch, dict(spec.kwargs))  # a ModelError (a RobustgateError) names a bad arch
        if spec.weights is not None and pretrained:
            from robustgate.models.pretrained import load_pretrained

            # the classifier head keeps its fresh init where the class count differs from ImageNet's
            load_pretrained(net, spec.arch, spec.weights)
        student = parent.with_net(net.cpu()).eval()
        got = _logit_count(student, ctx, "the student")
        if logits is not None and got != logits:
            raise CompressionError(
                f"distill: the student {spec.arch} outputs {got} logits but the teacher outputs {logits}",
                hint=f"give the student kwargs: {{num_classes: {logits}}} (or whatever its builder calls the class count)",
            )
        if spec.width < 1:
            student = self._narrow(student, spec.width, ctx)
        return student

    @staticmethod
    def _narrow(student: Classifier, width: float, ctx: StepContext) -> Classifier:
        # The prune step's L1 pruning on the freshly initialised student: which channels go is
        # immaterial before training; what matters is that the structure is cut consistently
        # (DepGraph), the logits layer is kept, and the result is deterministic for restore().
        ratio = 1.0 - width
        try:
            return prune_channels(student, PruneParams(method="l1", ratio=ratio), ctx)
        except CompressionError as err:
            message = err.message.removeprefix("prune: ")
            if "would remove every output channel" in message:
                message = message.split(":")[0].replace(f"ratio {ratio} would", "it would")
                hint = "use a larger width: a layer of C channels keeps floor(C x width) of them, at least 1"
            else:
                hint = "width < 1 narrows the student with Torch-Pruning; use width: 1 or a student it can trace"
            raise CompressionError(
                f"distill: cannot narrow the student to width {width}: {message}",
                hint=hint,
            ) from None

    @staticmethod
    def _data(params: DistillParams, ctx: StepContext, logits: int) -> tuple[str, ImageSet]:
        name = params.on if params.on is not None else ctx.default_data
        if name is None:
            raise CompressionError(
                "distill needs training images and the baseline has no training set to borrow them from",
                hint="add on: DATASET under distill: (usually the set the baseline was trained on)",
            )
        data = ctx.dataset(name)
        if len(data.classes) != logits:
            raise CompressionError(
                f"distill: training set '{name}' has {len(data.classes)} classes but the teacher outputs {logits} logits",
                hint=f"distill on a dataset with the teacher's {logits} classes (usually the baseline's training set)",
            )
        return name, data

    # -- training --------------------------------------------------------------

    @staticmethod
    def _train(student: Classifier, teacher: Classifier, data: ImageSet, params: DistillParams, ctx: StepContext) -> None:
        import torch
        from torch.nn import functional as F

        from robustgate.compressors.int8.engine import Int8Net
        from robustgate.models.train import random_shift

        generator = torch.Generator().manual_seed(ctx.seed)
        device = ctx.device
        student.to(device).train()
        # An int8 teacher runs on the CPU only; an fp32 one is copied to the device (the parent stays put).
        teacher_device = torch.device("cpu") if isinstance(teacher.net, Int8Net) else device
        if teacher_device.type != "cpu":
            teacher = copy.deepcopy(teacher).to(teacher_device)
        optimizer = torch.optim.AdamW(student.net.parameters(), lr=params.lr, weight_decay=_WEIGHT_DECAY)
        steps_per_epoch = -(-len(data) // params.batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=params.lr, total_steps=params.epochs * steps_per_epoch
        )
        images, labels = data.floats(), data.labels
        T, alpha = params.temperature, params.alpha
        with bar(params.epochs * steps_per_epoch, "distilling", "step") as shown:
            for epoch in range(params.epochs):
                started = time.perf_counter()
                order = torch.randperm(len(data), generator=generator)
                total_loss, correct, agree, seen = 0.0, 0, 0, 0
                for start in range(0, len(data), params.batch_size):
                    shown.update()
                    batch = order[start : start + params.batch_size]
                    if len(batch) == 1 and len(data) > 1:
                        continue  # BatchNorm cannot train on a batch of one; the image is seen in other epochs
                    x, y = random_shift(images[batch], generator), labels[batch]
                    with torch.inference_mode():
                        soft = teacher(x.to(teacher_device))
                    # An ordinary tensor: inference tensors cannot be saved for backward.
                    soft = soft.float().to(device).clone()
                    x, y = x.to(device), y.to(device)
                    out = student(x)
                    loss = F.cross_entropy(out, y) if alpha < 1 else out.new_zeros(())
                    if alpha > 0:
                        kl = F.kl_div(
                            F.log_softmax(out / T, dim=1), F.log_softmax(soft / T, dim=1), reduction="batchmean", log_target=True
                        )
                        loss = alpha * T * T * kl + (1 - alpha) * loss
                    if not math.isfinite(loss.item()):
                        raise CompressionError(
                            f"distill: training diverged in epoch {epoch + 1} (the loss is not finite)",
                            hint="lower distill: lr, or check that the teacher's outputs are finite",
                        )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    total_loss += loss.item() * len(batch)
                    prediction = out.argmax(1)
                    correct += int((prediction == y).sum())
                    agree += int((prediction == soft.argmax(1)).sum())
                    seen += len(batch)
                seen = max(seen, 1)
                ctx.progress(
                    f"distill: epoch {epoch + 1}/{params.epochs}: loss {total_loss / seen:.3f}, train accuracy "
                    f"{correct / seen:.3f}, agreement with the teacher {agree / seen:.3f} ({time.perf_counter() - started:.1f}s)"
                )
        student.cpu().eval()  # steps hand back CPU models (what the cache stores)




def _logit_count(model: Classifier, ctx: StepContext, what: str) -> int:
    import torch

    try:
        with torch.inference_mode():
            out = model(ctx.example[:1].cpu())
    except Exception as err:
        raise CompressionError(
            f"distill: {what} fails on the model's input geometry: {first_line(err)}",
            hint="check the student's arch and kwargs against the spec's model input size",
        ) from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise CompressionError(f"distill: {what} does not return batch x classes logits")
    return int(out.shape[1])


compression_steps.register("distill")(DistillStep())

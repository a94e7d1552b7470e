"""Checks to run before (and while) training a classifier: is the network wired up sanely?

Karpathy's "A recipe for training neural networks" (2019) lists the cheap checks that catch most
bugs before a long run; this module implements them for any ``nn.Module`` classifier.

- :func:`initial_loss_check`: with ``C`` classes and logits near zero at initialisation, the
  softmax is close to uniform and the cross-entropy is ``−log(1/C) = log C``. A loss far above
  that means the logits start large (e.g. a final layer initialised with a large scale) and the
  first steps are spent undoing confident wrong predictions.
- :func:`overfit_one_batch`: a model that cannot drive the loss of one small batch to ~0 has a
  bug (labels shuffled against inputs, a detached graph, a frozen layer, a wrong loss).
- :func:`lr_range_test`: Smith, "Cyclical Learning Rates for Training Neural Networks", WACV
  2017, §3.3, in the form of the fastai learning-rate finder: the rate grows exponentially from
  ``start_lr`` to ``end_lr`` over ``steps`` mini-batches and the loss is recorded as it goes.
- :func:`layer_statistics`, :func:`dead_relu_fraction`: per-layer activation and weight-gradient
  statistics (Glorot & Bengio, AISTATS 2010, §4: vanishing and exploding gradients) and the
  fraction of ReLU units that never fire.
- :func:`freeze_backbone`, :func:`transfer_learning_param_groups`: the two transfer-learning
  modes, linear probing (train the head only) and fine-tuning with a smaller backbone rate.

A *batch* is a pair ``(inputs, targets)``: ``inputs`` of any shape the model accepts with the
batch first, ``targets`` int64 class indices ``(N,)``. The default loss is
:func:`torch.nn.functional.cross_entropy` on the model's ``(N, C)`` logits; pass ``loss_fn`` for
another one. Tensors are used on the device they are on; move model and batch beforehand.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foveal.errors import ConfigError, DataError
from foveal.training.optimizers import build_optimizer

LossFn = Callable[[Tensor, Tensor], Tensor]
Batch = tuple[Tensor, Tensor]

#: Modules whose output units count as dead when they are never positive over a batch.
RELU_MODULES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)


def _unpack(batch: object) -> Batch:
    """``batch`` as ``(inputs, targets)``, or a one-line DataError."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise DataError(
            f"expected a batch (inputs, targets), got {type(batch).__name__}"
            + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        )
    inputs, targets = batch
    if not isinstance(inputs, Tensor) or not isinstance(targets, Tensor):
        raise DataError(
            "expected a batch of two tensors (inputs, targets), got "
            f"({type(inputs).__name__}, {type(targets).__name__})"
        )
    return inputs, targets


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"expected {name} > 0, got {value!r}")


# --------------------------------------------------------------------------- initial loss


@dataclass(frozen=True)
class InitialLossReport:
    """The loss of a freshly initialised model against the uniform-prediction value ``log C``.

    Attributes:
        loss: mean cross-entropy over the batch (nats).
        expected: ``log C``, the loss of uniform predictions.
        tolerance: the allowed ``|loss − expected|`` (nats).
        within_tolerance: ``|loss − expected| <= tolerance``.
        logit_std: standard deviation of all logits; near 0 for a sane initialisation.
    """

    loss: float
    expected: float
    tolerance: float
    within_tolerance: bool
    logit_std: float


def initial_loss_check(
    model: nn.Module,
    batch: Batch,
    num_classes: int,
    tolerance: float = 0.25,
    *,
    loss_fn: LossFn = F.cross_entropy,
) -> InitialLossReport:
    """Compare the loss of an untrained ``model`` on ``batch`` with ``log num_classes``.

    With logits ``z ≈ 0`` the softmax is ``1/C`` for every class, so the cross-entropy
    ``−log softmax(z)_y ≈ log C`` whatever the labels (Karpathy 2019, "verify loss @ init").
    The model runs in eval mode (no dropout) without gradients; its mode is restored afterwards.

    Args:
        model: a classifier mapping ``inputs`` to logits ``(N, C)``.
        batch: ``(inputs, targets)``, targets int64 ``(N,)`` in ``[0, C)``.
        num_classes: ``C >= 2``.
        tolerance: allowed absolute deviation from ``log C`` in nats. A default PyTorch
            initialisation typically lands within 0.1 nat.
        loss_fn: ``loss_fn(logits, targets)``, mean cross-entropy by default.
    """
    inputs, targets = _unpack(batch)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"expected num_classes >= 2, got {num_classes!r}")
    _positive("tolerance", tolerance)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(inputs)
            loss = float(loss_fn(logits, targets))
    finally:
        model.train(was_training)
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise DataError(
            f"expected logits (N, {num_classes}), got {tuple(logits.shape)}"
        )
    expected = math.log(num_classes)
    return InitialLossReport(
        loss=loss,
        expected=expected,
        tolerance=float(tolerance),
        within_tolerance=abs(loss - expected) <= tolerance,
        logit_std=float(logits.float().std()),
    )


# --------------------------------------------------------------------------- overfit one batch


@dataclass(frozen=True)
class OverfitReport:
    """The result of training on a single batch.

    Attributes:
        losses: the loss before each optimiser step, then the loss after the last one;
            ``losses[0]`` is the starting loss, ``len(losses) = steps_taken + 1``.
        final_loss: ``losses[-1]``.
        threshold: the target loss.
        reached: ``final_loss < threshold``.
        steps_taken: optimiser steps performed.
    """

    losses: list[float]
    final_loss: float
    threshold: float
    reached: bool
    steps_taken: int


# What the checks build when given an optimiser name: torch's defaults (AdamW's weight decay
# 0.01 included) except SGD, which gets the momentum nearly every real run uses.
_OPTIMIZER_DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {"momentum": 0.9},
    "adamw": {"weight_decay": 0.01},
}


def default_optimizer(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """The optimiser the checks build for ``name``, over ``model``'s trainable parameters.

    Built by :func:`foveal.training.optimizers.build_optimizer` (any of its names) with torch's
    defaults, except ``sgd``, which gets momentum 0.9; ``lr`` is the learning rate.
    """
    return build_optimizer(name, model, lr=lr, **_OPTIMIZER_DEFAULTS.get(name, {}))


def overfit_one_batch(
    model: nn.Module,
    batch: Batch,
    *,
    steps: int = 500,
    lr: float = 1e-2,
    optimizer: str = "adam",
    threshold: float = 1e-3,
    loss_fn: LossFn = F.cross_entropy,
) -> OverfitReport:
    """Train ``model`` on ``batch`` alone until the loss falls below ``threshold``.

    A network with enough capacity memorises any small batch, even one with random labels
    (Zhang et al., "Understanding deep learning requires rethinking generalization", ICLR 2017),
    so failure to reach ~0 loss points at a bug rather than at the data. The model is trained in
    place, in train mode (pass ``copy.deepcopy(model)`` to keep the original); its mode is
    restored afterwards. Dropout makes the target harder to reach; so does batch norm with a
    batch of one.

    Args:
        model, batch: as in :func:`initial_loss_check`.
        steps: maximum number of optimiser steps.
        lr: learning rate of the optimiser.
        optimizer: a name of :data:`foveal.training.optimizers.OPTIMIZER_NAMES`, built with
            torch's defaults except ``sgd`` (momentum 0.9).
        threshold: stop as soon as the loss is below this value.
        loss_fn: ``loss_fn(outputs, targets)`` returning a scalar.
    """
    inputs, targets = _unpack(batch)
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"expected steps >= 1, got {steps!r}")
    _positive("lr", lr)
    _positive("threshold", threshold)
    opt = default_optimizer(optimizer, model, lr)
    was_training = model.training
    model.train()
    losses: list[float] = []
    taken = 0
    try:
        while True:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs), targets)
            losses.append(float(loss.detach()))
            if losses[-1] < threshold or taken == steps or not math.isfinite(losses[-1]):
                break
            loss.backward()
            opt.step()
            taken += 1
    finally:
        model.train(was_training)
    return OverfitReport(
        losses=losses,
        final_loss=losses[-1],
        threshold=float(threshold),
        reached=losses[-1] < threshold,
        steps_taken=taken,
    )


# --------------------------------------------------------------------------- LR range test


@dataclass(frozen=True)
class LRRangeResult:
    """The learning-rate range test's curve and suggestions.

    Attributes:
        lrs: the rate used at each recorded step, ``(K,)``.
        losses: the raw mini-batch loss at each step, ``(K,)``; ``losses[i]`` is measured
            before the update made with ``lrs[i]`` (as in fastai), so it reflects the rates
            up to ``lrs[i − 1]``.
        smoothed: the bias-corrected exponential moving average of ``losses``, ``(K,)``.
        suggested_lr: the rate at the steepest descent of ``smoothed`` against ``log10 lr``
            (``None`` when fewer than 3 steps were recorded).
        min_loss_lr: the rate at the minimum of ``smoothed``.
        diverged: whether the test stopped early because the loss diverged.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested_lr: float | None
    min_loss_lr: float
    diverged: bool

    @property
    def min_loss_lr_over_10(self) -> float:
        """The fastai "minimum / 10" rule: one decade below the rate of lowest loss."""
        return self.min_loss_lr / 10


def _cycle(loader_or_batches: Iterable[Batch]) -> Iterator[Batch]:
    """Batches from ``loader_or_batches``, starting it over each time it runs out."""
    while True:
        empty = True
        for batch in loader_or_batches:
            empty = False
            yield batch
        if empty:
            raise DataError("expected at least one batch from the loader, got none")


def lr_range_test(
    model: nn.Module,
    loader_or_batches: Iterable[Batch],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: LossFn = F.cross_entropy,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    smooth: float = 0.98,
    divergence: float = 4.0,
) -> LRRangeResult:
    """Train for up to ``steps`` mini-batches with an exponentially growing learning rate.

    Step ``i = 0 … steps−1`` uses (the closed form of
    :class:`torch.optim.lr_scheduler.ExponentialLR` with ``γ = (end/start)^(1/(steps−1))``)::

        lr_i = start_lr · (end_lr / start_lr)^(i / (steps − 1))

    The loss is smoothed with a bias-corrected exponential moving average (β = ``smooth``)::

        m_i = β m_{i−1} + (1 − β) L_i,   m_{−1} = 0,   L̂_i = m_i / (1 − β^{i+1})

    and the test stops after the first step with ``L̂_i > divergence · min_{j<=i} L̂_j`` or a
    non-finite loss (fastai ``LRFinder``). Every parameter group gets the same rate.

    The suggested rate is the one where ``dL̂ / d log10(lr)`` (``numpy.gradient``) is most
    negative: the loss falls fastest there, and the fastai finder's ``steep`` suggestion picks
    the same point. The fastai alternative ``min_loss_lr / 10`` is available as
    :attr:`LRRangeResult.min_loss_lr_over_10`; it is more conservative. Both are heuristics:
    read the plot (:func:`foveal.report.diagnostics.plot_lr_range`).

    The model's parameters and buffers, its train/eval mode and the optimiser's state (moments,
    rates) are restored afterwards and the gradients cleared, so the range test can precede the
    real run.

    Args:
        model: in train mode during the test.
        loader_or_batches: a ``DataLoader`` or any re-iterable of ``(inputs, targets)``; it is
            started over when it runs out before ``steps``.
        optimizer: the optimiser to probe (its rates are overwritten during the test); by
            default SGD with momentum 0.9 over the parameters that require gradients.
        loss_fn: ``loss_fn(outputs, targets)`` returning a scalar.
        start_lr, end_lr: the rate at the first and the last step, ``0 < start_lr < end_lr``.
        steps: number of steps, at least 2.
        smooth: β in ``[0, 1)``; 0 disables smoothing.
        divergence: stop factor, > 1.
    """
    _positive("start_lr", start_lr)
    _positive("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ConfigError(f"expected end_lr > start_lr={start_lr}, got {end_lr}")
    if not isinstance(steps, int) or steps < 2:
        raise ConfigError(f"expected steps >= 2, got {steps!r}")
    if not 0 <= smooth < 1:
        raise ConfigError(f"expected 0 <= smooth < 1, got {smooth}")
    if not divergence > 1:
        raise ConfigError(f"expected divergence > 1, got {divergence}")

    model_state = copy.deepcopy(model.state_dict())
    was_training = model.training
    if optimizer is None:
        opt = default_optimizer("sgd", model, start_lr)
        opt_state = None
    else:
        opt = optimizer
        opt_state = copy.deepcopy(opt.state_dict())

    ratio = end_lr / start_lr
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    average, best, diverged = 0.0, math.inf, False
    batches = _cycle(loader_or_batches)
    model.train()
    try:
        for i in range(steps):
            lr = start_lr * ratio ** (i / (steps - 1))
            for group in opt.param_groups:
                group["lr"] = lr
            inputs, targets = _unpack(next(batches))
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs), targets)
            value = float(loss.detach())
            if not math.isfinite(value):
                diverged = True
                break
            loss.backward()
            opt.step()
            average = smooth * average + (1 - smooth) * value
            smoothed_value = average / (1 - smooth ** (i + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(smoothed_value)
            best = min(best, smoothed_value)
            if smoothed_value > divergence * best:
                diverged = True
                break
    finally:
        model.load_state_dict(model_state)
        model.train(was_training)
        opt.zero_grad(set_to_none=True)
        if opt_state is not None:
            opt.load_state_dict(opt_state)
    if not lrs:
        raise DataError("the loss was not finite at the first step of the range test")

    curve = np.asarray(smoothed)
    suggested = None
    if len(curve) >= 3:
        slope = np.gradient(curve, np.log10(lrs))
        suggested = lrs[int(np.argmin(slope))]
    return LRRangeResult(
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        suggested_lr=suggested,
        min_loss_lr=lrs[int(np.argmin(curve))],
        diverged=diverged,
    )


# --------------------------------------------------------------------------- layer statistics


@dataclass(frozen=True)
class LayerStats:
    """Statistics of one leaf module over one batch.

    Attributes:
        name: the module's qualified name in ``model.named_modules()``.
        kind: its class name (``"Linear"``, ``"ReLU"``, …).
        activation_mean, activation_std: over every element of the module's output.
        weight_grad_norm, weight_grad_std: L2 norm and standard deviation of ``∂L/∂weight``;
            ``None`` for modules without a ``weight`` parameter requiring gradients.
        dead_fraction: for ReLU modules, the fraction of units never positive over the batch
            (see :func:`dead_relu_fraction`); ``None`` otherwise.
    """

    name: str
    kind: str
    activation_mean: float
    activation_std: float
    weight_grad_norm: float | None
    weight_grad_std: float | None
    dead_fraction: float | None


def _dead_units(output: Tensor) -> Tensor:
    """Bool ``(U,)``: which units along dim 1 are never positive (batch and spatial dims)."""
    if output.ndim < 2:
        raise DataError(f"expected a ReLU output (N, U, ...), got shape {tuple(output.shape)}")
    per_unit = output.detach().transpose(0, 1).reshape(output.shape[1], -1)
    return ~(per_unit > 0).any(dim=1)


def _record_outputs(
    model: nn.Module, select: Callable[[nn.Module], bool]
) -> tuple[dict[str, list[Tensor]], list[torch.utils.hooks.RemovableHandle]]:
    """Forward hooks storing the (detached) outputs of the selected modules, in call order."""
    outputs: dict[str, list[Tensor]] = {}
    handles = []
    for name, module in model.named_modules():
        if not select(module):
            continue

        def hook(_m: nn.Module, _args: object, output: object, name: str = name) -> None:
            if isinstance(output, Tensor):
                outputs.setdefault(name, []).append(output.detach().clone())

        handles.append(module.register_forward_hook(hook))
    return outputs, handles


def dead_relu_fraction(model: nn.Module, batch: Batch | Tensor) -> dict[str, float]:
    """The fraction of dead units after each ReLU module of ``model`` on ``batch``.

    A unit is one index along dim 1 of the ReLU's output (a feature of ``(N, F)``, a channel of
    ``(N, C, H, W)``); it is *dead* on the batch when it is never positive, for any sample or
    position. Its gradient is then zero everywhere and plain SGD cannot revive it (e.g. after a
    large negative bias or too high a learning rate). Only :data:`RELU_MODULES` are seen; a
    functional ``F.relu`` inside ``forward`` has no hook. A module called several times is
    counted over all calls. Runs without gradients in the model's current mode.

    Returns:
        ``{module name: fraction in [0, 1]}`` in order of first call.
    """
    inputs = batch if isinstance(batch, Tensor) else _unpack(batch)[0]
    outputs, handles = _record_outputs(model, lambda m: isinstance(m, RELU_MODULES))
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return {
        name: float(_dead_units(torch.cat(outs)).float().mean()) for name, outs in outputs.items()
    }


def layer_statistics(
    model: nn.Module, batch: Batch, *, loss_fn: LossFn = F.cross_entropy
) -> list[LayerStats]:
    """Activation and weight-gradient statistics of every leaf module, input to output.

    One forward pass records each leaf module's output with forward hooks; the loss gradient
    with respect to every ``weight`` is then taken with :func:`torch.autograd.grad`, so the
    parameters' ``.grad`` fields are left untouched. Runs in the model's current mode.

    What to look for (Glorot & Bengio 2010): in a deep stack of sigmoids, ``∂L/∂W`` shrinks
    layer by layer toward the input, since each layer multiplies the backward signal by about
    ``σ'(z) · sqrt(n · Var(w)) <= 1/4 · sqrt(n · Var(w))`` (vanishing); with too large an
    initial scale it grows instead (exploding). Activation std collapsing to 0 or saturating,
    and ``dead_fraction`` near 1, are the forward-pass symptoms.

    Returns:
        One :class:`LayerStats` per leaf module that produced a tensor, in order of first call
        (a module called several times is summarised over all its calls).
    """
    inputs, targets = _unpack(batch)
    leaves = {m for m in model.modules() if next(m.children(), None) is None}
    outputs, handles = _record_outputs(model, lambda m: m in leaves)
    try:
        loss = loss_fn(model(inputs), targets)
    finally:
        for handle in handles:
            handle.remove()
    modules = dict(model.named_modules())
    weights = {
        name: modules[name].weight
        for name in outputs
        if isinstance(getattr(modules[name], "weight", None), nn.Parameter)
        and modules[name].weight.requires_grad
    }
    grads = dict(
        zip(weights, torch.autograd.grad(loss, list(weights.values()), allow_unused=True),
            strict=True)
    ) if weights else {}

    stats = []
    for name, outs in outputs.items():
        module = modules[name]
        flat = torch.cat([o.reshape(-1).float() for o in outs])
        grad = grads.get(name)
        if name in weights and grad is None:  # weight not on the loss path
            grad = torch.zeros_like(weights[name])
        dead = None
        if isinstance(module, RELU_MODULES):
            dead = float(_dead_units(torch.cat(outs)).float().mean())
        stats.append(
            LayerStats(
                name=name,
                kind=type(module).__name__,
                activation_mean=float(flat.mean()),
                activation_std=float(flat.std()) if flat.numel() > 1 else 0.0,
                weight_grad_norm=None if grad is None else float(grad.float().norm()),
                weight_grad_std=(
                    None if grad is None
                    else float(grad.float().std()) if grad.numel() > 1 else 0.0
                ),
                dead_fraction=dead,
            )
        )
    return stats


def flag_gradient_layers(
    stats: Sequence[LayerStats], ratio: float = 100.0
) -> tuple[list[str], list[str]]:
    """Layers whose weight gradients look vanishing or exploding, ``(vanishing, exploding)``.

    The per-element gradient scale of a layer is its ``weight_grad_std`` (independent of the
    layer's size, unlike the norm). With ``g_ref`` the geometric mean of the finite, positive
    scales, a layer is *vanishing* when its scale is 0 or below ``g_ref / ratio`` and
    *exploding* when it is not finite or above ``g_ref · ratio`` (Glorot & Bengio, AISTATS 2010,
    §4: backpropagated gradients shrinking or growing geometrically with depth).

    Args:
        stats: :class:`foveal.training.diagnostics.LayerStats` from ``layer_statistics``.
        ratio: allowed spread around ``g_ref``, > 1.
    """
    if not ratio > 1:
        raise ConfigError(f"expected a gradient ratio > 1, got {ratio}")
    scales = {s.name: s.weight_grad_std for s in stats if s.weight_grad_std is not None}
    good = [g for g in scales.values() if math.isfinite(g) and g > 0]
    ref = math.exp(sum(math.log(g) for g in good) / len(good)) if good else 0.0
    vanishing = [n for n, g in scales.items() if g == 0 or (ref > 0 and g < ref / ratio)]
    exploding = [n for n, g in scales.items() if not math.isfinite(g) or (ref > 0 and g > ref
                                                                         * ratio)]
    return vanishing, exploding


# --------------------------------------------------------------------------- transfer learning


def in_head(name: str, head_names: Sequence[str]) -> bool:
    """Whether the parameter, buffer or module ``name`` belongs to the head: it is ``h`` or
    starts with ``h + "."`` for some ``h`` in ``head_names``."""
    return any(name == h or name.startswith(h + ".") for h in head_names)


def split_head(
    model: nn.Module, head_names: Sequence[str]
) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """``(backbone, head)`` named parameters, split by :func:`in_head`.

    Raises ConfigError when ``head_names`` is empty or one of them owns no parameter.
    """
    if isinstance(head_names, str) or not head_names:
        raise ConfigError(f"expected a non-empty list of head module names, got {head_names!r}")
    named = list(model.named_parameters())
    modules = dict(model.named_modules())
    for h in head_names:
        if h not in modules or not any(in_head(n, [h]) for n, _ in named):
            raise ConfigError(
                f"expected head {h!r} to name a module with parameters, got none "
                f"(top-level modules: {', '.join(n for n, _ in model.named_children())})"
            )
    head, backbone = [], []
    for n, p in named:
        (head if in_head(n, head_names) else backbone).append((n, p))
    return backbone, head


def freeze_backbone(model: nn.Module, head_names: Sequence[str]) -> list[str]:
    """Linear probing: ``requires_grad = False`` for every parameter outside the head.

    Args:
        head_names: qualified module names of the head, e.g. ``["fc"]`` for a ResNet or
            ``["classifier.1"]``; each must own at least one parameter.

    Returns:
        The names of the frozen parameters.

    Frozen parameters get no gradient, so no optimiser changes them. Batch-norm running
    statistics are buffers, not parameters: they still follow the new data while the model is in
    train mode. Call ``.eval()`` on the backbone's BatchNorm modules after ``model.train()`` to
    keep them fixed as well.
    """
    backbone, _ = split_head(model, head_names)
    for _, p in backbone:
        p.requires_grad_(False)
    return [n for n, _ in backbone]


def transfer_learning_param_groups(
    model: nn.Module,
    head_names: Sequence[str],
    lr: float,
    backbone_lr_scale: float = 0.1,
) -> list[dict]:
    """Fine-tuning: optimiser parameter groups with a smaller rate for the pretrained backbone.

    Returns ``[{"name": "backbone", "params": [...], "lr": lr · backbone_lr_scale},
    {"name": "head", "params": [...], "lr": lr}]`` for any ``torch.optim`` optimiser (extra
    keys are kept in its ``param_groups``); parameters with ``requires_grad = False`` are left
    out, and so is a group left empty. A scale of 0 is rejected: use :func:`freeze_backbone`.
    """
    _positive("lr", lr)
    if not (math.isfinite(backbone_lr_scale) and backbone_lr_scale > 0):
        raise ConfigError(
            f"expected backbone_lr_scale > 0 (use freeze_backbone for 0), got {backbone_lr_scale}"
        )
    backbone, head = split_head(model, head_names)
    groups = [
        {"name": "backbone", "params": [p for _, p in backbone if p.requires_grad],
         "lr": lr * backbone_lr_scale},
        {"name": "head", "params": [p for _, p in head if p.requires_grad], "lr": lr},
    ]
    return [g for g in groups if g["params"]]

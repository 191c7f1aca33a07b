"""How the weights move: the optimizer (SGD with Nesterov momentum, or AdamW), one training step, the
learning-rate schedules ``fit`` follows (warm-up and cosine, or one-cycle) and Smith's learning-rate range
test. ``train`` uses them and shows them under the same names (``train.make_optimizer``, ...)."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import env
from .checks import real_number, whole_number
from .loader import batches_for


def _lr_at(step: int, total: int, base_lr: float, warmup: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base_lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _warmup_steps(warmup_epochs: float, steps_per_epoch: int, total_steps: int) -> int:
    # a run of very few steps per epoch still warms up (AlexNet diverges without it)
    return int(warmup_epochs * steps_per_epoch) or (min(10, total_steps // 4) if warmup_epochs > 0 else 0)


SCHEDULES = ("cosine", "one-cycle")


def _one_cycle_at(step: int, total: int, top: float, pct_start: float = 0.3, div: float = 25.0,
                  final_div: float = 1e4) -> float:
    """torch's ``OneCycleLR`` (its defaults, cosine in both phases) at ``step`` of ``total``: from top/div
    up to ``top`` over the first 30 % of the steps, then down to top/div/final_div."""
    start, low = top / div, top / div / final_div
    up_end = float(pct_start * total) - 1
    if step <= up_end:
        a, b, pct = start, top, step / up_end if up_end > 0 else 1.0
    else:
        a, b, pct = top, low, (step - up_end) / max(1e-9, (total - 1) - up_end)
    return b + (a - b) / 2 * (1 + math.cos(math.pi * min(1.0, pct)))


def lr_schedule(lr: float, epochs: int, steps_per_epoch: int, warmup_epochs: float = 0.5,
                schedule: str = "cosine") -> list[float]:
    """The learning rate ``fit`` uses at each of its ``epochs * steps_per_epoch`` steps. ``"cosine"`` (the
    course's): linear warm-up over ``warmup_epochs``, then cosine decay to 0. ``"one-cycle"`` (Smith &
    Topin 2019, as torch's ``OneCycleLR`` with its defaults: up from lr/25 to lr over 30 % of the steps, then
    down to lr/250000, both halves cosine; ``warmup_epochs`` is not used). Returns a list of floats."""
    lr = real_number(lr, "lr", low=0, expected="a learning rate >= 0")
    epochs = whole_number(epochs, "epochs", low=0)
    steps_per_epoch = whole_number(steps_per_epoch, "steps_per_epoch", low=0)
    warmup_epochs = real_number(warmup_epochs, "warmup_epochs", low=0)
    total = epochs * steps_per_epoch
    if schedule == "one-cycle":
        return [_one_cycle_at(step, total, lr) for step in range(total)]
    if schedule != "cosine":
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}.")
    warmup = _warmup_steps(warmup_epochs, steps_per_epoch, total)
    return [_lr_at(step, total, lr, warmup) for step in range(total)]


OPTIMIZERS = ("sgd", "adamw")


def make_optimizer(model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                   kind: str = "sgd") -> torch.optim.Optimizer:
    """``kind="sgd"``: SGD with Nesterov momentum (plain SGD when ``momentum`` is 0); ``"adamw"``: AdamW
    (Loshchilov & Hutter 2019; ``momentum`` is then its first beta). Weight decay applies to weights
    only: biases and normalization parameters (every tensor of one dimension) are not decayed. With
    no weight decay there is one parameter group. The update is torch's multi-tensor (``foreach``) one on every
    device: one call updates all the tensors, where the per-tensor loop (torch's default on a CPU) makes a few
    Python-dispatched operations per tensor and step: LeNet-1's 10 tensors cost it about 40 a step."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {kind!r}.")
    params = [p for p in model.parameters() if p.requires_grad]
    if weight_decay:
        groups = [{"params": [p for p in params if p.dim() > 1], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]
    else:
        groups = [{"params": params, "weight_decay": 0.0}]
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999), foreach=True)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0, foreach=True)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               lr: float | None = None, label_smoothing: float = 0.0, precision=None, scaler=None):
    """One step of SGD: forward, cross-entropy loss, backward, update.

    ``x``: a float batch ``B x C x H x W`` on the model's device, ``y``: int64 labels ``B``. ``lr``, when
    given, is set on every parameter group first; ``precision`` is an autocast context (None: full
    precision) and ``scaler`` a ``GradScaler`` for fp16. Returns ``(loss, logits)``, detached, on the
    device (reading them is left to the caller: every read is a device sync).
    """
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    with precision or contextlib.nullcontext():
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    if scaler is not None and scaler.is_enabled():  # fp16 only: bf16 and fp32 need no loss scaling
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss.detach(), logits.detach()


def lr_range_test(model: nn.Module, train_data, *, start: float = 1e-5, end: float = 10.0, steps: int = 100,
                  batch_size: int = 64, momentum: float = 0.9, weight_decay: float = 0.0, mean=None, std=None,
                  augment=None, seed: int = 0, device: torch.device | str | None = None,
                  stop_factor: float = 4.0) -> dict:
    """Smith's learning-rate range test (2017; fastai's ``lr_find``): ``steps`` training steps with the
    course's optimizer, the rate growing geometrically from ``start`` to ``end``, stopped early once the
    smoothed loss passes ``stop_factor`` times its lowest value (or stops being finite). The test changes
    nothing: the model's weights, buffers, device, the mode of each of its layers and its gradients are put
    back afterwards, and the global random state is left as it was (also when the test raises).

    ``train_data``: as for :func:`fit`. Returns ``{"lrs", "losses"}`` (one per step taken; losses smoothed
    by an exponential moving average, bias-corrected, as fastai does), ``"steepest"`` (the rate where the
    smoothed loss falls fastest against log(rate)), ``"lowest"`` (the rate at the lowest loss) and
    ``"blew_up"`` (the rate at which it stopped, or None when it reached ``end``)."""
    import copy

    whole_number(steps, "steps", low=5)
    if not 0 < start < end:
        raise ValueError(f"Expected 0 < start < end, got start={start}, end={end}.")
    device = env.resolve_device(device)
    home = {name: t.device for name, t in [*model.named_parameters(), *model.named_buffers()]}
    saved, modes = copy.deepcopy(model.state_dict()), {m: m.training for m in model.modules()}
    grads = {p: None if p.grad is None else p.grad.clone() for p in model.parameters()}
    lrs, losses, blew_up = [], [], None
    cuda = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        try:
            model.to(device)
            batches = batches_for(train_data, batch_size, shuffle=True, device=device, mean=mean, std=std, seed=seed,
                                  augment=augment)
            optimizer = make_optimizer(model, start, momentum, weight_decay)
            model.train()
            lrs, losses, blew_up = _range_steps(model, optimizer, batches, device, start, end, steps, stop_factor)
        finally:
            _put_back(model, home, saved, modes, grads)
    finite = [(lr, loss) for lr, loss in zip(lrs, losses) if math.isfinite(loss)]
    logs = [math.log10(lr) for lr, _ in finite]
    slopes = [(finite[i + 1][1] - finite[i - 1][1]) / (logs[i + 1] - logs[i - 1]) for i in range(1, len(finite) - 1)]
    steepest = finite[1 + min(range(len(slopes)), key=slopes.__getitem__)][0] if slopes else None
    lowest = min(finite, key=lambda p: p[1])[0] if finite else None
    return {"lrs": lrs, "losses": losses, "steepest": steepest, "lowest": lowest, "blew_up": blew_up}


def _put_back(model: nn.Module, home: dict, saved: dict, modes: dict, grads: dict) -> None:
    """The model as it was: each tensor on its device (``home``: name -> device), the weights and buffers of
    ``saved``, each layer's mode (``modes``: module -> training) and the gradients of ``grads``."""
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if name in home and t.device != home[name]:
                t.data = t.data.to(home[name])
    model.load_state_dict(saved)
    for m, training in modes.items():
        m.training = training
    for p, grad in grads.items():
        p.grad = grad


def _range_steps(model, optimizer, batches, device, start, end, steps, stop_factor):
    """The range test's steps: ``(lrs, smoothed losses, the rate it blew up at or None)``."""
    lrs, losses, average, best, blew_up = [], [], 0.0, math.inf, None
    step = 0
    while step < steps:
        for x, y in batches:
            if step >= steps:
                break
            lr = start * (end / start) ** (step / (steps - 1))
            loss, _ = train_step(model, optimizer, x.to(device), y.to(device), lr)
            average = 0.98 * average + 0.02 * float(loss)
            smoothed = average / (1 - 0.98 ** (step + 1))
            lrs.append(lr)
            losses.append(smoothed)
            step += 1
            best = min(best, smoothed)
            if not math.isfinite(smoothed) or smoothed > stop_factor * best:
                blew_up, step = lr, steps
                break
    return lrs, losses, blew_up

"""Training: ``fit``, ``evaluate``, ``predict``, ``History`` and atomic, resumable checkpoints.

``fit`` is the one training loop of the course. On CUDA it trains in mixed precision (bf16 where
the GPU supports it, else fp16 with a gradient scaler) and in channels-last memory format; the
learning rate warms up, then follows a cosine decay, which suits short runs.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .files import atomic_write
from .loader import TensorLoader, normalize
from . import env
from .models import evaluating


@dataclass
class History:
    """What happened during training, epoch by epoch.

    ``epochs`` holds one dict per finished epoch: ``epoch`` (1-based), ``train_loss``,
    ``train_accuracy``, ``val_loss``/``val_accuracy`` (when validation data was given), ``lr``
    (at the epoch's end), ``seconds`` and ``images_per_s``. ``snapshots`` holds, when asked for,
    ``{"epoch", "state", "activations"}`` dicts of CPU tensors (epoch 0 is before training).
    """

    epochs: list[dict] = field(default_factory=list)
    snapshots: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def column(self, key: str) -> list[float]:
        """One metric across epochs, e.g. ``history.column("val_accuracy")``."""
        return [row[key] for row in self.epochs if key in row]

    @property
    def last(self) -> dict:
        """The last epoch's row (empty before the first epoch ends)."""
        return self.epochs[-1] if self.epochs else {}

    def to_dict(self) -> dict:
        """Plain containers only, so that it loads with ``torch.load(weights_only=True)``."""
        return {"epochs": self.epochs, "snapshots": self.snapshots, "config": self.config}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(epochs=list(d["epochs"]), snapshots=list(d["snapshots"]), config=dict(d["config"]))


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


def _as_loader(data, batch_size: int, shuffle: bool, device: torch.device, mean, std, seed: int,
               channels_last: bool, augment=None):
    """A ``(images, labels)`` tensor pair becomes a :class:`TensorLoader`; a Dataset a DataLoader."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and torch.is_tensor(data[0]):
        images, labels = data
        return TensorLoader(images, labels, batch_size, shuffle=shuffle, device=device,
                                     mean=mean, std=std, seed=seed, channels_last=channels_last,
                                     augment=augment)
    if isinstance(data, torch.utils.data.Dataset):
        given = [name for name, value in (("augment", augment), ("mean", mean), ("std", std)) if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to an (images, labels) pair of uint8 tensors; a Dataset "
                             "yields ready float tensors, so normalize and augment inside it (or pass tensors).")
        gen = torch.Generator().manual_seed(seed)
        return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=gen)
    raise TypeError(
        f"Expected data as an (images, labels) pair of tensors or a torch Dataset, got {type(data).__name__}."
    )


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _lr_at(step: int, total: int, base_lr: float, warmup: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base_lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _warmup_steps(warmup_epochs: float, steps_per_epoch: int, total_steps: int) -> int:
    # a run of very few steps per epoch still warms up (AlexNet diverges without it)
    return int(warmup_epochs * steps_per_epoch) or (min(10, total_steps // 4) if warmup_epochs > 0 else 0)


def lr_schedule(lr: float, epochs: int, steps_per_epoch: int, warmup_epochs: float = 0.5) -> list[float]:
    """The learning rate ``fit`` uses at each of its ``epochs * steps_per_epoch`` steps: linear
    warm-up over ``warmup_epochs``, then cosine decay to 0. Returns a list of floats."""
    total = epochs * steps_per_epoch
    warmup = _warmup_steps(warmup_epochs, steps_per_epoch, total)
    return [_lr_at(step, total, lr, warmup) for step in range(total)]


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, then rename,
    so an interrupted save never leaves a half-written checkpoint."""
    atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain containers only).

    Raises ``RuntimeError`` naming the file when it is corrupted or not a checkpoint."""
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:
        first_line = str(err).strip().split("\n")[0][:200]
        raise RuntimeError(f"{path} is corrupted or not a course checkpoint: delete it to start training "
                           f"from scratch ({type(err).__name__}: {first_line})") from err


def make_optimizer(model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> torch.optim.SGD:
    """SGD with Nesterov momentum (plain SGD when ``momentum`` is 0). Weight decay applies to weights
    only: biases and normalization parameters (every tensor of one dimension) are not decayed. With
    no weight decay there is one parameter group, so each step is one fused update."""
    params = [p for p in model.parameters() if p.requires_grad]
    if weight_decay:
        groups = [{"params": [p for p in params if p.dim() > 1], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]
    else:
        groups = [{"params": params}]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)


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


def fit(model: nn.Module, train_data, val_data=None, *, epochs: int, lr: float = 0.1,
        batch_size: int = 64, weight_decay: float = 0.0, momentum: float = 0.9,
        label_smoothing: float = 0.0, warmup_epochs: float = 0.5,
        checkpoint: str | os.PathLike | None = None, progress: bool = True,
        device: torch.device | str | None = None, seed: int = 0,
        mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
        augment=None, snapshot_every: int | None = None, probe: torch.Tensor | None = None,
        snapshot_layers: Sequence[str] | None = None, on_epoch_end=(), compile: bool = False) -> History:
    """Train ``model`` with SGD (momentum, warm-up then cosine learning rate) and return its History.

    The defaults need no tuning for the course's small networks: with them LeNet-1 beats a plain
    constant-rate loop (``benchmarks/fit_defaults.py``).

    ``train_data``/``val_data``: an ``(images uint8 N x C x H x W, labels int64 N)`` pair (kept on
    the device, normalized on the fly with ``mean``/``std``, default per channel count) or a torch
    Dataset of ready float tensors. ``checkpoint``: a path written atomically after every epoch;
    when it already exists, training resumes after its last epoch (a run already finished returns
    at once). ``snapshot_every=k`` with ``probe`` (uint8 ``P x C x H x W``) stores, at the start and
    every k epochs, the weights and the activations of ``snapshot_layers`` (default: every conv,
    linear and activation layer) on the probe, on the CPU (:class:`measure.Snapshots`); memory is about
    ``(epochs/k + 1) * (parameters + P * activations per image) * 4`` bytes. ``on_epoch_end``: more
    hooks ``hook(model, epoch, history, last)``, called before the first epoch (epoch 0) and after
    each one. Raises :class:`TrainingDiverged` naming the epoch and learning rate when the loss is
    not finite.
    """
    from .measure import Snapshots

    _check_arguments(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                      momentum=momentum, label_smoothing=label_smoothing, warmup_epochs=warmup_epochs)
    if snapshot_every is not None:
        if not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise ValueError(f"snapshot_every must be a whole number of epochs >= 1, got {snapshot_every!r}.")
        if probe is None:
            raise ValueError("snapshot_every needs a probe batch: pass probe=images (uint8 P x C x H x W).")
    device = torch.device(device) if device is not None else env.device()
    on_cuda = device.type == "cuda"
    model.to(device)
    if on_cuda:
        model.to(memory_format=torch.channels_last)
    train_loader = _as_loader(train_data, batch_size, True, device, mean, std, seed, on_cuda, augment)
    if isinstance(train_loader, TensorLoader):
        _check_labels(model, train_loader)
    steps_per_epoch = len(train_loader)
    lrs = lr_schedule(lr, epochs, steps_per_epoch, warmup_epochs)
    optimizer = make_optimizer(model, lr, momentum, weight_decay)
    amp_dtype = _autocast_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    # full precision runs the hot loop with no autocast machinery at all
    precision = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else None
    step_fn = torch.compile(model) if compile else model
    hooks = list(on_epoch_end)
    if snapshot_every:
        hooks.insert(0, Snapshots(probe, every=snapshot_every, layers=snapshot_layers, mean=mean, std=std))

    history = History(config={"lr": lr, "batch_size": batch_size, "weight_decay": weight_decay,
                              "momentum": momentum, "epochs": epochs, "seed": seed,
                              "label_smoothing": label_smoothing, "warmup_epochs": warmup_epochs,
                              "model": repr(model)})
    start_epoch = 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        if not {"model", "optimizer", "history", "epoch"} <= set(state):
            raise RuntimeError(f"{checkpoint} is not a fit() checkpoint (keys {sorted(state)}): "
                               "use another path or delete it.")
        _check_resumable(checkpoint, state, model, history.config)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = History.from_dict(state["history"])
        start_epoch = state["epoch"]
        if start_epoch >= epochs:
            return history
    if start_epoch == 0:
        for hook in hooks:
            hook(model, 0, history, False)

    for epoch in range(start_epoch, epochs):
        model.train()
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch)
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=True)
        for i, (x, y) in enumerate(bar):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            current_lr = lrs[epoch * steps_per_epoch + i]
            loss, logits = train_step(step_fn, optimizer, x, y, current_lr, label_smoothing, precision, scaler)
            loss_sum += loss * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            # Reading numbers back from the device is a sync: do it only now and then.
            if i % 20 == 0 or i == steps_per_epoch - 1:
                mean_loss = loss_sum.item() / seen
                _check_finite(mean_loss, epoch, current_lr)
                elapsed = time.perf_counter() - t0
                bar.set_postfix(loss=f"{mean_loss:.4f}", acc=f"{correct.item() / seen:.3f}",
                                img_s=f"{seen / max(elapsed, 1e-9):.0f}")
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "train_loss": loss_sum.item() / seen,
               "train_accuracy": correct.item() / seen, "lr": current_lr, "seconds": seconds,
               "images_per_s": seen / seconds}
        _check_finite(row["train_loss"], epoch, current_lr)
        if val_data is not None:
            val = evaluate(model, val_data, batch_size=max(batch_size, 512), device=device, mean=mean, std=std)
            row["val_loss"], row["val_accuracy"] = val["loss"], val["accuracy"]
        history.epochs.append(row)
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k.endswith(("loss", "accuracy"))})
        bar.close()
        for hook in hooks:
            hook(model, epoch + 1, history, epoch + 1 == epochs)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                         "history": history.to_dict(), "epoch": epoch + 1})
    return history


def _check_arguments(**values) -> None:
    """Clear errors for fit's numbers: each must be a finite number in its range."""
    ranges = {"epochs": (1, None, "a whole number >= 1"), "batch_size": (1, None, "a whole number >= 1"),
              "lr": (0, None, "a positive number"), "weight_decay": (0, None, "a number >= 0"),
              "momentum": (0, 1, "a number in [0, 1)"), "label_smoothing": (0, 1, "a number in [0, 1)"),
              "warmup_epochs": (0, None, "a number >= 0")}
    for name, value in values.items():
        low, high, expected = ranges[name]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok and name in ("epochs", "batch_size"):
            ok = float(value).is_integer() and value >= low
        elif ok:
            ok = (value > low if name == "lr" else value >= low) and (high is None or value < high)
        if not ok:
            raise ValueError(f"{name} must be {expected}, got {value!r}.")


def _check_labels(model: nn.Module, batches: TensorLoader) -> None:
    """Labels must index the model's outputs: found before training, not as an IndexError inside it."""
    labels = batches.labels
    with evaluating(model), torch.no_grad():
        x, _ = next(iter(batches))  # each pass draws its own seeded order: this one changes nothing
        classes = model(x[:1].to(next(model.parameters()).device)).shape[-1]
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= classes:
        raise ValueError(f"The labels run from {low} to {high}, but the model has {classes} outputs: labels must "
                         f"be class indices 0..{classes - 1} (build the model with num_classes={high + 1}?).")


def _check_resumable(path, state: dict, model: nn.Module, config: dict) -> None:
    """A checkpoint resumes only the run it came from: same model, same settings (more epochs allowed)."""
    saved = state["history"].get("config", {})
    if saved.get("model") is not None and saved["model"] != config["model"]:
        raise RuntimeError(f"{path} was saved by another model:\n{saved['model']}\nnot this one:\n{config['model']}\n"
                           "Delete the checkpoint (or pass another checkpoint path) to train this model from scratch.")
    mine = model.state_dict()
    wrong = [k for k, v in state["model"].items() if k not in mine or tuple(mine[k].shape) != tuple(v.shape)]
    wrong += [k for k in mine if k not in state["model"]]
    if wrong:
        raise RuntimeError(f"{path} does not fit this model (parameters {sorted(set(wrong))[:5]} differ): delete it, "
                           "or pass another checkpoint path, to train this model from scratch.")
    differ = {k: (saved[k], config[k]) for k in config
              if k not in ("epochs", "model") and k in saved and saved[k] != config[k]}
    if differ:
        listed = ", ".join(f"{k} {a!r} in the checkpoint, {b!r} now" for k, (a, b) in differ.items())
        raise RuntimeError(f"{path} was trained with other settings ({listed}): resuming would mix two runs. "
                           "Use the checkpoint's settings to continue it, or delete it to start again.")


def _check_finite(loss: float, epoch: int, lr: float) -> None:
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"Training diverged: the loss became {loss} in epoch {epoch + 1} at learning rate {lr:.4g}. "
            "Try a learning rate about 10x smaller."
        )


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, *, batch_size: int = 1000,
            device: torch.device | str | None = None, mean=None, std=None) -> torch.Tensor:
    """Logits for uint8 ``images`` (``N x C x H x W``): a float32 ``N x classes`` tensor on the CPU.
    The model is put in eval mode for the call and left in the mode it was in."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    loader = TensorLoader(images, torch.zeros(len(images), dtype=torch.long), batch_size,
                                   device=device, mean=mean, std=std)
    amp_dtype = _autocast_dtype(device)
    out = []
    with evaluating(model):
        for x, _ in loader:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                out.append(model(x).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def evaluate(model: nn.Module, data, *, batch_size: int = 1000, device: torch.device | str | None = None,
             mean=None, std=None) -> dict:
    """Loss, accuracy and error (= 1 - accuracy) of ``model`` on ``data``.

    ``data`` is an ``(images uint8, labels)`` pair or a Dataset. Returns
    ``{"loss": float, "accuracy": float, "error": float}``.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    loader = _as_loader(data, batch_size, False, device, mean, std, 0, False)
    amp_dtype = _autocast_dtype(device)
    loss_sum, correct, seen = 0.0, 0, 0
    with evaluating(model):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(x).float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    if seen == 0:
        raise ValueError("evaluate() got no examples.")
    accuracy = correct / seen
    return {"loss": loss_sum / seen, "accuracy": accuracy, "error": 1.0 - accuracy}

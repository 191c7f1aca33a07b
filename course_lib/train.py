"""Training: ``fit``, ``evaluate`` and ``predict`` (and, from :mod:`.optim`, the optimizer, one step, the
learning-rate schedules and the range test, under the same names: ``train.make_optimizer``, ...).

There is one training loop in the course, :class:`TrainingRun`: its :meth:`TrainingRun.train_epoch` is what
``fit`` calls for every epoch, and what ``course_lib.distributed`` calls on every process; both save and
resume the same checkpoints (:mod:`.checkpoints`). On CUDA, networks of a million parameters or more train in
mixed precision (bf16 where the GPU supports it, else fp16 with a gradient scaler), and every network in
channels-last memory format (on a CPU: the small ones, which train faster so); the learning rate warms up,
then follows a cosine decay, which suits short runs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import env
from .checkpoints import check_resumable, load_checkpoint, save_checkpoint
from .checks import real_number, whole_number
from .history import History, Snapshots
from .layers import device_of, evaluating
from .loader import TensorLoader, batches_for
from .optim import (OPTIMIZERS, SCHEDULES, lr_range_test, lr_schedule, make_optimizer,  # noqa: F401 (the lessons' train.NAME)
                    train_step)

__all__ = ["History", "Settings", "TrainingDiverged", "TrainingRun", "evaluate", "fit", "load_checkpoint",
           "lr_range_test", "lr_schedule", "make_optimizer", "predict", "save_checkpoint", "train_step"]


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


# Below this many parameters a network is too small for bf16 autocast to pay on a GPU: on an H200 it cost
# LeNet-1 (2,578 weights) about 12 % of fit's speed (benchmarks/README.md); the casts outweigh the math.
AUTOCAST_MIN_PARAMETERS = 1_000_000


@functools.cache
def cpu_has_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (x86's AVX512-BF16 or AMX-BF16 instructions, read from
    Linux's /proc/cpuinfo): there oneDNN runs bf16 convolutions and matrix products about 1.5x faster than
    float32 (AlexNet on 2 cores of a Xeon with AMX, benchmarks/README.md). Elsewhere bf16 would be emulated,
    slower than float32: False."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags)) and torch.backends.mkldnn.is_available()


def _autocast_dtype(device: torch.device, model: nn.Module | None = None) -> torch.dtype | None:
    """The autocast dtype ``fit`` uses for networks of at least :data:`AUTOCAST_MIN_PARAMETERS` parameters:
    on CUDA bf16 (fp16 where the GPU lacks bf16), on a CPU with native bf16 (:func:`cpu_has_bf16`) bf16;
    None (full precision) elsewhere and for small networks, whose casts outweigh their arithmetic.
    ``COURSE_BF16_CPU=0`` turns the CPU's bf16 off (to compare, or to reproduce a float32 run)."""
    if model is not None and sum(p.numel() for p in model.parameters()) < AUTOCAST_MIN_PARAMETERS:
        return None
    if device.type == "cpu":
        wanted = os.environ.get("COURSE_BF16_CPU", "1").strip() not in ("0", "no", "false")
        return torch.bfloat16 if wanted and cpu_has_bf16() else None
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def channels_last_pays(device: torch.device, model: nn.Module) -> bool:
    """Whether ``fit`` trains ``model`` on ``device`` in channels-last (NHWC) memory: always on CUDA (the
    tensor cores' layout); on a CPU only for networks below :data:`AUTOCAST_MIN_PARAMETERS`, which train in
    float32 there: oneDNN's NHWC kernels made LeNet-1, its simplification and LeNet-5 10-15 % faster on 2
    cores of a Xeon, but a bf16 AlexNet 3x slower (``benchmarks/README.md``)."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and sum(p.numel() for p in model.parameters()) < AUTOCAST_MIN_PARAMETERS


@dataclass(frozen=True)
class Settings:
    """How a run trains: what ``fit`` and the distributed command line take, checked once.

    ``epochs``, ``batch_size`` (the global batch), ``lr`` (peak rate), ``weight_decay``, ``momentum``,
    ``label_smoothing``, ``warmup_epochs``, ``optimizer`` (``"sgd"`` or ``"adamw"``), ``seed`` and ``schedule``
    (``"cosine"`` or ``"one-cycle"``). numpy
    numbers become Python ones. Raises ``ValueError`` naming the first setting out of its range (a count
    such as ``epochs=2.0`` is refused: it must be a whole number)."""

    epochs: int
    lr: float = 0.1
    batch_size: int = 64
    weight_decay: float = 0.0
    momentum: float = 0.9
    label_smoothing: float = 0.0
    warmup_epochs: float = 0.5
    optimizer: str = "sgd"
    seed: int = 0
    schedule: str = "cosine"

    def __post_init__(self):
        unit = "a number in [0, 1)"
        checked = {"epochs": whole_number(self.epochs, "epochs"),
                   "lr": real_number(self.lr, "lr", low=0, low_open=True, expected="a positive number"),
                   "batch_size": whole_number(self.batch_size, "batch_size"),
                   "weight_decay": real_number(self.weight_decay, "weight_decay", low=0, expected="a number >= 0"),
                   "momentum": real_number(self.momentum, "momentum", low=0, high=1, high_open=True, expected=unit),
                   "label_smoothing": real_number(self.label_smoothing, "label_smoothing", low=0, high=1,
                                                  high_open=True, expected=unit),
                   "warmup_epochs": real_number(self.warmup_epochs, "warmup_epochs", low=0, expected="a number >= 0"),
                   "seed": whole_number(self.seed, "seed", low=0)}
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}.")


class TrainingRun:
    """One training run's state, shared by :func:`fit` and ``course_lib.distributed``: the optimizer,
    the learning-rate schedule, the precision, the history, resuming from a checkpoint and saving one.

    ``TrainingRun(model, settings, steps_per_epoch, device, config=..., step_model=None)``: ``model`` is
    the network whose weights are saved; ``step_model`` what the steps call (a compiled or
    ``DistributedDataParallel`` wrapper of it; default the model). ``config`` (plain values) is what a
    checkpoint must match to be resumed, besides the model: ``fit`` puts in the settings, the model's
    ``repr`` (``model_repr``) and the data's size and normalization.
    """

    def __init__(self, model: nn.Module, settings: Settings, steps_per_epoch: int, device: torch.device,
                 config: dict, step_model: nn.Module | None = None):
        self.model, self.settings, self.device = model, settings, device
        self.step_model = step_model if step_model is not None else model
        self.steps_per_epoch = steps_per_epoch
        self.lrs = lr_schedule(settings.lr, settings.epochs, steps_per_epoch, settings.warmup_epochs, settings.schedule)
        self.optimizer = make_optimizer(model, settings.lr, settings.momentum, settings.weight_decay,
                                        settings.optimizer)
        amp_dtype = _autocast_dtype(device, model)
        # full precision runs the hot loop with no autocast machinery at all
        self.precision = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        self.history = History(config=config)
        self.epoch = 0   # epochs finished

    def resume(self, path: str | os.PathLike) -> bool:
        """Continue from the checkpoint at ``path`` when there is one (weights, optimizer, history, epoch),
        read once. Returns True when it resumed. Raises ``RuntimeError`` when it is not a checkpoint of this
        run (:func:`checkpoints.check_resumable`), or when it holds more epochs than this run asks for."""
        if not Path(path).exists():
            return False
        self.resume_from(load_checkpoint(path), path)
        return True

    def resume_from(self, state: dict, path: str | os.PathLike) -> None:
        """Continue from ``state``, a checkpoint already read (from ``path``, named in the errors): checked,
        then loaded into the model, the optimizer, the history and the epoch count."""
        check_resumable(path, state, self.model, self.history.config)
        if state["epoch"] > self.settings.epochs:
            raise RuntimeError(f"{path} holds {state['epoch']} epochs of this run, more than the "
                               f"{self.settings.epochs} "
                               f"asked for: ask for {state['epoch']} or more to get it back (or continue it), or "
                               "delete it (or give another path) to train a shorter run from scratch.")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = History.from_dict(state["history"])
        self.epoch = state["epoch"]

    def save(self, path: str | os.PathLike) -> None:
        """Write the checkpoint (weights, optimizer, history, epochs finished) atomically to ``path``."""
        save_checkpoint(path, {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                               "history": self.history.to_dict(), "epoch": self.epoch})

    def train_epoch(self, batches, progress: bool = True, reduce=None, on_step=None) -> dict:
        """Train one epoch on ``batches`` (an iterable of ``(x float B x C x H x W, y int64 B)`` on the
        device, ``steps_per_epoch`` of them) with a progress bar. ``reduce``, when given, sums a tensor
        over processes (``torch.distributed.all_reduce``) before the epoch's figures are read. Checks the
        loss every 20 steps and at the end, raising :class:`TrainingDiverged`. Returns the epoch's row
        (``epoch``, ``train_loss``, ``train_accuracy``, ``lr``, ``seconds``, ``images_per_s``); the
        caller appends it to ``history`` (with validation figures) and calls :meth:`end_epoch`.
        ``on_step(step)`` is called after each step with the run's step count (1 after the first)."""
        epoch, s = self.epoch, self.settings
        self.step_model.train()
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        bar = tqdm(batches, total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{s.epochs}", disable=not progress)
        lr = s.lr
        for i, (x, y) in enumerate(bar):
            lr = self.lrs[epoch * self.steps_per_epoch + i]
            loss, logits = train_step(self.step_model, self.optimizer, x, y, lr, s.label_smoothing,
                                      self.precision, self.scaler)
            loss_sum += loss.float() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            if on_step is not None:
                on_step(epoch * self.steps_per_epoch + i + 1)
            # Reading numbers back from the device is a sync: do it only now and then.
            if i % 20 == 0:
                mean_loss = loss_sum.item() / seen
                _check_finite(mean_loss, epoch, lr)
                bar.set_postfix(loss=f"{mean_loss:.4f}", acc=f"{correct.item() / seen:.3f}",
                                img_s=f"{seen / max(time.perf_counter() - start, 1e-9):.0f}")
        totals = torch.stack([loss_sum, correct.float(), torch.tensor(float(seen), device=self.device)])
        if reduce is not None:
            reduce(totals)
        loss_sum, correct, seen = totals.tolist()
        seconds = time.perf_counter() - start
        _check_finite(loss_sum / max(seen, 1), epoch, lr)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_accuracy": correct / seen, "lr": lr,
               "seconds": seconds, "images_per_s": seen / seconds}
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", acc=f"{row['train_accuracy']:.4f}")
        bar.close()
        return row

    def end_epoch(self, row: dict, checkpoint: str | os.PathLike | None = None, hooks=()) -> None:
        """Record the finished epoch's ``row``, save the checkpoint (before the hooks, so that an
        interrupted hook never loses the epoch), then call each ``hook(model, epoch, history, last=...)``
        and save again if there were hooks (they may add to the history)."""
        self.history.epochs.append(row)
        self.epoch += 1
        if checkpoint is not None:
            self.save(checkpoint)
        for hook in hooks:
            hook(self.model, self.epoch, self.history, last=self.epoch == self.settings.epochs)
        if checkpoint is not None and hooks:
            self.save(checkpoint)


def fit(model: nn.Module, train_data, val_data=None, *, epochs: int, lr: float = 0.1,
        batch_size: int = 64, weight_decay: float = 0.0, momentum: float = 0.9,
        label_smoothing: float = 0.0, warmup_epochs: float = 0.5, optimizer: str = "sgd", schedule: str = "cosine",
        checkpoint: str | os.PathLike | None = None, progress: bool = True,
        device: torch.device | str | None = None, seed: int = 0,
        mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
        augment=None, snapshot_every: int | None = None, probe: torch.Tensor | None = None,
        snapshot_layers: Sequence[str] | None = None, snapshot_steps=(), on_snapshot=(), on_epoch_end=(),
        compile: bool = False, channels_last: bool | None = None) -> History:
    """Train ``model`` with SGD (momentum, warm-up then cosine learning rate) and return its History.

    The defaults need no tuning for the course's small networks: with them LeNet-1 beats a plain
    constant-rate loop (``benchmarks/fit_defaults.py``). The training settings (``epochs`` ... ``seed``,
    ``optimizer``: ``"sgd"`` or ``"adamw"``; ``schedule``: ``"cosine"`` or ``"one-cycle"``, see
    :func:`lr_schedule`) are those of :class:`Settings`.

    ``train_data``/``val_data``: an ``(images uint8 N x C x H x W, labels int64 N)`` pair (kept on
    the device, normalized on the fly with ``mean``/``std``, default per channel count) or a torch
    Dataset of ready float tensors. ``checkpoint``: a path written atomically after every epoch;
    when it already exists, training resumes after its last epoch (a run already finished returns
    at once; a checkpoint of more epochs than ``epochs`` is an error). ``snapshot_every=k`` with ``probe``
    (uint8 ``P x C x H x W``) stores, at the start and every k epochs, the weights and the activations of
    ``snapshot_layers`` (default: every conv, linear and activation layer) on the probe, on the CPU
    (:class:`history.Snapshots`); ``snapshot_steps`` (with ``probe``) adds snapshots after those training
    steps; memory is about ``(snapshots) * (parameters + P * activations per image) * 4`` bytes.
    ``on_snapshot``: a callable (or several) called with each snapshot as it is taken, while training goes
    on (a :class:`widgets.GlanceView`'s ``add_snapshot`` redraws with it). ``on_epoch_end``: another hook
    (or a list of them) ``hook(model, epoch, history, last=...)`` (``last`` by name), called before the first
    epoch (epoch 0) and after
    each one. The model ends on ``device``, in the mode it was in, in the usual (contiguous) memory format.
    It trains in channels-last where that pays (``channels_last=None``: :func:`channels_last_pays`, on CUDA
    and for small networks on a CPU; True or False to choose); networks of a million parameters or more train
    in bf16 autocast on CUDA and on a CPU with native bf16 (:func:`cpu_has_bf16`); ``history.config["precision"]``
    says which. Raises :class:`TrainingDiverged` naming the epoch and learning rate when the loss is not finite.
    """
    settings = Settings(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                        momentum=momentum, label_smoothing=label_smoothing, warmup_epochs=warmup_epochs,
                        optimizer=optimizer, seed=seed, schedule=schedule)
    hooks = _hooks(snapshot_every, probe, snapshot_layers, mean, std, on_epoch_end, snapshot_steps, on_snapshot)
    device = env.resolve_device(device)
    model.to(device)
    if channels_last is None:
        channels_last = channels_last_pays(device, model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    batches = batches_for(train_data, settings.batch_size, shuffle=True, device=device, mean=mean, std=std,
                          seed=settings.seed, channels_last=channels_last, augment=augment)
    if isinstance(batches, TensorLoader):
        _check_labels(model, batches)
    # the validation data goes to the device once, not once per epoch
    val_batches = None if val_data is None else \
        batches_for(val_data, max(settings.batch_size, 512), shuffle=False, device=device, mean=mean, std=std)
    train_size = len(batches.labels) if isinstance(batches, TensorLoader) else len(batches.dataset)
    # what a checkpoint must match to be resumed: the settings, the model, the data's size and normalization
    amp_dtype = _autocast_dtype(device, model)
    config = {**dataclasses.asdict(settings), "model_repr": repr(model), "train_size": train_size,
              "mean": _floats(mean), "std": _floats(std),
              "precision": f"{str(amp_dtype).removeprefix('torch.')} autocast" if amp_dtype else "float32"}
    run = TrainingRun(model, settings, len(batches), device, config, torch.compile(model) if compile else model)
    snapshots = next((h for h in hooks if isinstance(h, Snapshots)), None)
    if snapshots is not None:
        snapshots.steps_per_epoch = len(batches)
    on_step = None if snapshots is None or not snapshots.steps else \
        (lambda step: snapshots.at_step(model, step, run.history))
    was_training = model.training
    try:
        if checkpoint is not None and run.resume(checkpoint) and run.epoch >= settings.epochs:
            return run.history
        if run.epoch == 0:
            for hook in hooks:
                hook(model, 0, run.history, last=False)
        while run.epoch < settings.epochs:
            if hasattr(batches, "set_epoch"):
                batches.set_epoch(run.epoch)
            row = run.train_epoch(((x.to(device, non_blocking=True), y.to(device, non_blocking=True))
                                   for x, y in batches), progress, on_step=on_step)
            if val_batches is not None:
                val = _measure(model, val_batches, device)
                row["val_loss"], row["val_accuracy"] = val["loss"], val["accuracy"]
            run.end_epoch(row, checkpoint, hooks)
    finally:
        model.train(was_training)
        if channels_last:   # the learner's views and reshapes of the weights expect the usual layout
            model.to(memory_format=torch.contiguous_format)
    return run.history


def _floats(values) -> list[float] | None:
    return None if values is None else [float(v) for v in (values if hasattr(values, "__iter__") else [values])]


def _hooks(snapshot_every, probe, snapshot_layers, mean, std, on_epoch_end, snapshot_steps=(),
           on_snapshot=()) -> list:
    """``fit``'s end-of-epoch hooks: the snapshots (when asked for, checked here) and the caller's."""
    hooks = [on_epoch_end] if callable(on_epoch_end) else list(on_epoch_end)
    listeners = [on_snapshot] if callable(on_snapshot) else list(on_snapshot or ())
    if any(not callable(f) for f in listeners):
        raise ValueError("on_snapshot must be a callable (or a list of them) taking one snapshot dict.")
    if listeners and snapshot_every is None and not snapshot_steps:
        raise ValueError("on_snapshot needs snapshots to be taken: pass probe=images and snapshot_steps=[...] "
                         "or snapshot_every=k.")
    if snapshot_every is not None or snapshot_steps:
        if snapshot_every is not None:
            whole_number(snapshot_every, "snapshot_every", expected="a whole number of epochs >= 1")
        if probe is None:
            raise ValueError("snapshots need a probe batch: pass probe=images (uint8 P x C x H x W).")
        hooks.insert(0, Snapshots(probe, every=snapshot_every, layers=snapshot_layers, mean=mean, std=std,
                                  steps=snapshot_steps, listeners=listeners))
    return hooks


def _check_labels(model: nn.Module, batches: TensorLoader) -> None:
    """Labels must index the model's outputs: found before training, not as an IndexError inside it."""
    labels = batches.labels
    with evaluating(model), torch.no_grad():
        x, _ = next(iter(batches))  # each pass draws its own seeded order: this one changes nothing
        classes = model(x[:1].to(device_of(model))).shape[-1]
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= classes:
        raise ValueError(f"The labels run from {low} to {high}, but the model has {classes} outputs: labels must "
                         f"be class indices 0..{classes - 1} (build the model with num_classes={high + 1}?).")


def _check_finite(loss: float, epoch: int, lr: float) -> None:
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"Training diverged: the loss became {loss} in epoch {epoch + 1} at learning rate {lr:.4g}. "
            "Try a learning rate about 10x smaller."
        )


def _outputs(model: nn.Module, batches, device: torch.device):
    """``(logits float32 B x classes, labels B)`` for each batch of ``batches``, in eval mode (the one
    inference loop of :func:`predict`, :func:`evaluate` and ``fit``'s validation)."""
    amp_dtype = _autocast_dtype(device, model)
    with evaluating(model), torch.no_grad():
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                yield model(x).float(), y


def _measure(model: nn.Module, batches, device: torch.device) -> dict:
    loss_sum, correct, seen = 0.0, 0, 0
    for logits, y in _outputs(model, batches, device):
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= logits.shape[1]):
            raise ValueError(f"The labels run from {int(y.min())} to {int(y.max())}, but the model has "
                             f"{logits.shape[1]} outputs: labels must be class indices 0..{logits.shape[1] - 1}.")
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    if seen == 0:
        raise ValueError("evaluate() got no examples.")
    return {"loss": loss_sum / seen, "accuracy": correct / seen, "error": 1.0 - correct / seen}


def _on_device(model: nn.Module, device) -> torch.device:
    """The device to run on: ``device`` when given (the model is moved there, as ``fit`` does), else the
    model's own."""
    if device is None:
        return device_of(model)
    device = env.resolve_device(device)
    model.to(device)
    return device


def predict(model: nn.Module, images: torch.Tensor, *, batch_size: int = 1000,
            device: torch.device | str | None = None, mean=None, std=None) -> torch.Tensor:
    """Logits for uint8 ``images`` (``N x C x H x W``): a float32 ``N x classes`` tensor on the CPU.
    The model runs on ``device`` (moved there; default: where it is), in eval mode for the call, and is
    left in the mode it was in."""
    device = _on_device(model, device)
    batches = TensorLoader(images, torch.zeros(len(images), dtype=torch.long), batch_size, device=device,
                           mean=mean, std=std)
    return torch.cat([logits.cpu() for logits, _ in _outputs(model, batches, device)])


def evaluate(model: nn.Module, data, *, batch_size: int = 1000, device: torch.device | str | None = None,
             mean=None, std=None) -> dict:
    """Loss, accuracy and error (= 1 - accuracy) of ``model`` on ``data``.

    ``data`` is an ``(images uint8, labels)`` pair or a Dataset; the model runs on ``device`` (moved there;
    default: where it is). Returns ``{"loss": float, "accuracy": float, "error": float}``.
    """
    device = _on_device(model, device)
    return _measure(model, batches_for(data, batch_size, shuffle=False, device=device, mean=mean, std=std), device)

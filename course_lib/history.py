"""What happened during training: :class:`History` (one row per epoch, and snapshots) and :class:`Snapshots`,
the end-of-epoch hook that keeps the weights and the activations on a probe batch so that lessons can scrub
through training afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn as nn

from .checks import whole_number
from .layers import device_of, record_batch
from .loader import normalize


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


class Snapshots:
    """A hook for ``train.fit`` that keeps the network's weights and its activations on a fixed probe batch.

    ``Snapshots(probe, every=1, layers=None, mean=None, std=None, steps=())``: ``probe`` is uint8
    ``P x C x H x W``; a snapshot is taken before training (step 0), every ``every`` epochs (None: never)
    and after the last, and after each of the training ``steps`` listed (the first few hundred steps are
    where most of what a small network learns happens, well inside its first epoch). Each is appended to
    ``history.snapshots`` as ``{"epoch" (fractional: steps / steps per epoch), "step", "state",
    "activations"}`` (CPU tensors; ``activations`` maps each of ``layers``, default every recorded layer, to
    ``P x ...``), in the order they were taken, and passed to each of ``listeners`` (callables) as it is.
    """

    def __init__(self, probe: torch.Tensor, every: int | None = 1, layers: Sequence[str] | None = None,
                 mean=None, std=None, steps=(), listeners=()):
        self.every = None if every is None else whole_number(every, "snapshot_every",
                                                             expected="a whole number of epochs >= 1")
        self.steps = sorted({whole_number(s, "snapshot_steps", expected="whole numbers of steps >= 1")
                             for s in steps})
        self.probe, self.layers, self.mean, self.std = probe, layers, mean, std
        self.steps_per_epoch = None
        self.listeners = list(listeners)

    def _keep(self, history: History, snapshot: dict) -> None:
        history.snapshots.append(snapshot)
        for listener in self.listeners:
            listener(snapshot)

    def __call__(self, model: nn.Module, epoch: int, history: History, last: bool) -> None:
        """The end-of-epoch hook (epoch 0: before training)."""
        step = epoch * (self.steps_per_epoch or 0)
        taken = {s.get("step") for s in history.snapshots}
        due = epoch == 0 or last or (self.every is not None and epoch % self.every == 0)
        if due and step not in taken:
            self._keep(history, self.take(model, epoch, step))

    def at_step(self, model: nn.Module, step: int, history: History) -> None:
        """The after-each-step hook: a snapshot after each of ``steps``."""
        if step in self.steps:
            self._keep(history, self.take(model, step / self.steps_per_epoch, step))

    def take(self, model: nn.Module, epoch: float, step: int | None = None) -> dict:
        """One snapshot of ``model`` now: ``{"epoch", "step", "state", "activations"}`` on the CPU."""
        _, acts = record_batch(model, normalize(self.probe.to(device_of(model)), self.mean, self.std), self.layers)
        state = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
                 for k, v in model.state_dict().items()}
        return {"epoch": epoch, "step": step, "state": state,
                "activations": acts}

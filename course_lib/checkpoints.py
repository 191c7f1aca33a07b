"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``, and resumed only by the run
they came from. ``fit`` and the distributed command line share these three functions.
"""

from __future__ import annotations

import numbers
import os
import re
from pathlib import Path

import torch
import torch.nn as nn

from .files import atomic_write

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")   # torch's messages can carry terminal colours


def plain(value):
    """``value`` with every numpy number and array made a Python number or list (recursively, in dicts,
    lists and tuples), so that it loads with ``torch.load(weights_only=True)``; tensors stay tensors."""
    if type(value).__module__ == "numpy":      # np.float64 is a float, but torch's safe loader refuses it
        return value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if torch.is_tensor(value) or value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, numbers.Number):
        return value.item() if hasattr(value, "item") else float(value)
    return value


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically (a temporary file in the same folder, then a rename), so an
    interrupted save never leaves a half-written checkpoint. numpy numbers in it are saved as Python ones."""
    atomic_write(path, lambda f: torch.save(plain(payload), f))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain containers only).

    Raises ``FileNotFoundError`` when there is none, and ``RuntimeError`` naming the file when it is
    corrupted or not a checkpoint."""
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:
        first_line = ANSI.sub("", str(err)).strip().split("\n")[0][:200]
        raise RuntimeError(f"{path} is corrupted or not a course checkpoint: delete it to start training "
                           f"from scratch ({type(err).__name__}: {first_line})") from err


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_resumable(path, state: dict, model: nn.Module, config: dict, ignore=("epochs",)) -> None:
    """A checkpoint resumes only the run it came from: ``state`` (what :func:`load_checkpoint` read from
    ``path``) must be a training checkpoint of ``model``'s architecture (``config["model_repr"]``, the
    parameters' names and shapes) with the same ``config`` (every key but ``ignore``; more epochs are
    allowed). Raises ``RuntimeError`` saying what differs and what to do."""
    keys = {"model", "optimizer", "history", "epoch"}
    if not isinstance(state, dict) or not keys <= set(state):
        keys = sorted(state) if isinstance(state, dict) else "?"
        raise RuntimeError(f"{path} is not a training checkpoint (keys {keys}, "
                           f"expected {sorted(keys)}): use another path or delete it.")
    history = state["history"] if isinstance(state["history"], dict) else {}
    saved = history.get("config", {})
    differ = {k: (saved.get(k), v) for k, v in config.items()
              if k not in ignore and k != "model_repr" and saved.get(k) != v}
    if differ:
        listed = ", ".join(f"{k}: {_short(a)} there, {_short(b)} now" for k, (a, b) in differ.items())
        raise RuntimeError(f"{path} is the checkpoint of another run ({listed}): resuming would mix two runs. "
                           "Resume with the same settings, or delete it (or give another path) to start afresh.")
    if "model_repr" in config and saved.get("model_repr") != config["model_repr"]:
        raise RuntimeError(f"{path} was saved by another model:\n{saved.get('model_repr')}\nnot this one:\n"
                           f"{config['model_repr']}\nDelete the checkpoint (or pass another checkpoint path) to "
                           "train this model from scratch.")
    mine = model.state_dict()
    wrong = [k for k, v in state["model"].items() if k not in mine or tuple(mine[k].shape) != tuple(v.shape)]
    wrong += [k for k in mine if k not in state["model"]]
    if wrong:
        raise RuntimeError(f"{path} does not fit this model (parameters {sorted(set(wrong))[:5]} differ): delete it, "
                           "or pass another checkpoint path, to train this model from scratch.")

"""How the reference AlexNets are trained: the recipe, the initial network (rebuilt exactly from a seed, so
that what learning changed can be measured), and a resumable training run that logs each epoch.

The recipe keeps the paper's architecture (two streams, LRN, overlapping pooling, dropout) and its SGD with
momentum 0.9 and weight decay 5e-4, and changes what a short CPU budget needs (each change is said in
:data:`RECIPE`'s ``why``). The network trains channels-last; with its LRN computed as a band
(:class:`models.alexnet.BandLocalResponseNorm`, torch's numbers) that makes a step 1.3-1.4x faster in bf16 on
this project's 2-core AMD EPYC than torch's LRN in the usual layout (benchmarks/reference_recipe.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch

from .. import models, references, train
from ..augment import resized_crop_flip
from ..files import data_root

# The recipe of the reference AlexNets; ``why`` says what each departure from 2012 is for.
RECIPE = {
    "epochs": 48, "lr": 0.02, "batch_size": 128, "momentum": 0.9, "weight_decay": 5e-4, "label_smoothing": 0.1,
    "warmup_epochs": 0.5, "schedule": "cosine", "crops": "resized (35-100 % of the area), flips",
    "conv1_std": 0.005, "precision": "bf16 autocast where the CPU or GPU has it", "channels_last": True,
    "why": {
        "init": "He initialization (fan-out) for conv2-conv5, so that a 48-epoch run starts learning at once (the "
                "paper's N(0, 0.01) everywhere never starts at this budget, lesson 09); conv1 from N(0, 0.005), "
                "half the paper's scale and 0.4 of He's: the course looks at conv1's filters, and what is left of "
                "a random start shows in them; a smaller start leaves less of it after the same learning",
        "schedule": "half an epoch of warm-up, then cosine to zero, instead of dividing the rate by 10 by hand",
        "crops": "random resized crops instead of fixed 224 crops of 256 px images: 9,469 training images "
                 "need stronger augmentation than 1.2 million",
        "label_smoothing": "0.1, as in later ImageNet recipes: softer targets for a small training set",
    },
}


def initial_network(streams: int, seed: int, num_classes: int = 10) -> models.AlexNet:
    """The reference AlexNet before training: :func:`references.initial_alexnet` with ``RECIPE["conv1_std"]``
    (what :func:`references.initial_network` rebuilds from a record). The same seed gives the same weights."""
    return references.initial_alexnet(streams, seed, RECIPE["conv1_std"], num_classes)


def conv1_cosine(model: torch.nn.Module, initial: torch.nn.Module) -> float:
    """The cosine between conv1's weights, flattened, in ``model`` and in ``initial`` (1: unchanged)."""
    a, b = (m.conv1.weight.detach().float().cpu().flatten() for m in (model, initial))
    return float(a @ b / (a.norm() * b.norm()))


def run_path(name: str, data: dict, epochs: int, seed: int, image_size: int) -> Path:
    """Where the training run of reference ``name`` keeps its resumable checkpoint: one file per recipe,
    data, epochs, image size and seed, so that other settings never resume it."""
    recipe = {k: v for k, v in RECIPE.items() if k != "why"}      # the words may change; the run stays
    key = json.dumps([recipe, data.get("sha256_of_md5sums"), data.get("train"), epochs, image_size], sort_keys=True)
    tag = hashlib.sha1(key.encode()).hexdigest()[:8]
    return data_root() / "checkpoints" / "runs" / f"reference-{name}-{tag}-seed{seed}.pt"


def train_reference(name: str, streams: int, d, data: dict, *, epochs: int, seed: int, image_size: int,
                    progress: bool, log=print) -> tuple[torch.nn.Module, train.History]:
    """Train reference ``name`` with :data:`RECIPE` for ``epochs`` on Imagenette ``d`` (an ImagenetteData)
    at ``image_size``, resuming from :func:`run_path` after an interruption. After each epoch the history
    gets ``conv1_cosine`` (conv1's cosine to its initial weights; ``seconds`` is the epoch's training time), and
    ``log`` a line (an epoch whose process was killed between its checkpoint and the hook keeps no cosine: None
    in the record). Returns ``(model, history)``; a finished run is loaded, not trained."""
    initial = initial_network(streams, seed, len(d.classes))
    model = initial_network(streams, seed, len(d.classes))
    start = time.perf_counter()

    def report(model, epoch, history, last=False):
        if epoch == 0:
            return
        history.last["conv1_cosine"] = conv1_cosine(model, initial)
        log(f"{name}: epoch {epoch}/{epochs}, top-1 {history.last['val_accuracy']:.4f}, conv1 cosine to its start "
            f"{history.last['conv1_cosine']:.3f}, {history.last['seconds']:.0f} s to train, "
            f"{time.perf_counter() - start:.0f} s since this process started", flush=True)

    history = train.fit(model, (d.train_images, d.train_labels), (d.val_images, d.val_labels), epochs=epochs,
                        lr=RECIPE["lr"], batch_size=RECIPE["batch_size"], momentum=RECIPE["momentum"],
                        weight_decay=RECIPE["weight_decay"], label_smoothing=RECIPE["label_smoothing"],
                        warmup_epochs=RECIPE["warmup_epochs"], schedule=RECIPE["schedule"],
                        augment=resized_crop_flip(image_size), seed=seed, progress=progress,
                        checkpoint=run_path(name, data, epochs, seed, image_size),
                        channels_last=RECIPE["channels_last"], on_epoch_end=report)
    return model, history

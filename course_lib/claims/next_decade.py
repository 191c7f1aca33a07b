"""Lesson 09's table: what the decade after AlexNet bought, one change at a time on Imagenette over seeds
(:data:`DECADE_CHANGES`, :func:`next_decade`), each change at its own learning rate chosen on held-out
training images (:func:`choose_rates`), beside a control (AlexNet on other seeds) and the verdict rule's
rate on noise (:func:`rule_on_noise`); and the practical recipe measured on the same networks (overfit one
batch, the learning-rate range test, activation statistics). The transfer section and the lesson's claims
report are in :mod:`.decade_transfer`."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import augment, env, imagenette, layers, loader, models, train
from ..models import alexnet_variants as variants
from ..checks import whole_number
from .rules import paired_table

BASELINE = "AlexNet"
CONTROL = "nothing: AlexNet on other seeds"
INIT_2012 = "2012's initialization instead of He's"
ALL_TOGETHER = "all together"
# lesson 09's table: name -> (AlexNetVariant keyword arguments, fit keyword arguments). The control is AlexNet
# itself on seeds the baseline did not use: what the rule says of a "change" that changes nothing.
DECADE_CHANGES = {
    BASELINE: ({}, {}),
    CONTROL: ({}, {}),
    INIT_2012: ({"init": "2012"}, {}),
    **{name: (kwargs, {}) for name, kwargs in variants.ARCHITECTURE_CHANGES.items()},
    "label smoothing 0.1": ({}, {"label_smoothing": 0.1}),
    ALL_TOGETHER: (variants.ALL_CHANGES, {"label_smoothing": 0.1}),
}
RELU_LAYERS = ("act1", "act2", "act3", "act4", "act5")


def decade_data(prof: env.Profile) -> imagenette.ImagenetteData:
    """Imagenette at lesson 09's image size for profile ``prof`` (``next_image_size`` px), every training
    image (the transfer section pretrains on all of five classes; :func:`table_data` cuts the table's share);
    the offline photos in ``smoke``."""
    return imagenette.for_profile(dataclasses.replace(prof, image_size=prof.next_image_size,
                                                      imagenette_train_size=None))


def table_data(d, prof: env.Profile) -> imagenette.ImagenetteData:
    """``d`` with the table's ``prof.next_train_size`` training images (a seeded subset; all when None)."""
    x, y = loader.take(d.train_images, d.train_labels, prof.next_train_size)
    return d._replace(train_images=x, train_labels=y)


def hold_out(d, fraction: float = 0.25, seed: int = 0):
    """``d`` training on all but a seeded ``fraction`` of its training images and validating on those
    (centre-cropped): learning rates are chosen on it, so that the validation images the table reports stay
    unseen by every choice. Raises ``ValueError`` unless both parts have images."""
    n = len(d.train_labels)
    k = int(round(n * fraction))
    if not 0 < k < n:
        raise ValueError(f"hold_out needs a fraction that leaves images on both sides, got {fraction} of {n}.")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    kept, held = order[k:], order[:k]
    return d._replace(train_images=d.train_images[kept], train_labels=d.train_labels[kept],
                      val_images=augment.center_crop(d.train_images[held], d.val_images.shape[-1]),
                      val_labels=d.train_labels[held])


def decade_model(change: str, prof: env.Profile, num_classes: int = 10) -> nn.Module:
    """The :class:`variants.AlexNetVariant` of ``change`` (a key of :data:`DECADE_CHANGES`) at ``prof``'s sizes."""
    return variants.AlexNetVariant(num_classes=num_classes, image_size=prof.next_image_size, width=prof.next_width,
                                   **DECADE_CHANGES[change][0])


def default_rate(prof: env.Profile) -> float:
    """The middle of ``prof.next_lrs``: the rate of a run that chose none."""
    return prof.next_lrs[len(prof.next_lrs) // 2]


def fit_settings(change: str, prof: env.Profile, **overrides) -> dict:
    """``fit``'s keyword arguments for ``change``: the course's recipe at ``prof``'s sizes (SGD with Nesterov
    momentum, warm-up and cosine, weight decay 5e-4, the paper's random crops and flips, :func:`default_rate`
    unless ``lr`` is given), then the change's. Channels-last memory: these networks train 5-40 % faster in it
    on a CPU, in float32 and in bfloat16 (measured on 2 cores of a Xeon; it is ``fit``'s choice on a GPU)."""
    settings = {"epochs": prof.next_epochs, "lr": default_rate(prof), "batch_size": prof.next_batch_size,
                "weight_decay": 5e-4, "augment": augment.crop_flip(prof.next_image_size), "channels_last": True}
    return {**settings, **DECADE_CHANGES[change][1], **overrides}


def decade_run(change: str, d, prof: env.Profile, seed: int, *, progress: bool = False, model=None,
               every_epoch: bool = False, **overrides) -> dict:
    """Train :func:`decade_model` of ``change`` (or ``model``) on ``d`` (:class:`imagenette.ImagenetteData`)
    with :func:`fit_settings`. ``every_epoch``: measure the validation images after every epoch (the
    history's curves), else once at the end: far less work on the few-label runs of :func:`transfer`, whose
    epochs are one step each. Returns ``{"accuracy": top-1 on the validation images, "model", "history",
    "parameters", "multiply_adds" (per image), "seconds" (all of it), "training_seconds" (the epochs alone,
    without measuring)}``."""
    env.seed_everything(seed)
    model = model if model is not None else decade_model(change, prof, len(d.classes))
    start = time.perf_counter()
    val = (d.val_images, d.val_labels)
    history = train.fit(model, (d.train_images, d.train_labels), val if every_epoch else None, seed=seed,
                        progress=progress, **fit_settings(change, prof, **overrides))
    accuracy = history.last["val_accuracy"] if every_epoch else train.evaluate(model, val)["accuracy"]
    return {"accuracy": accuracy, "model": model, "history": history,
            "parameters": models.count_parameters(model),
            "multiply_adds": variants.multiply_adds(model, (3, prof.next_image_size, prof.next_image_size)),
            "seconds": time.perf_counter() - start, "training_seconds": float(sum(history.column("seconds")))}


def best_setting(scores: dict, what: str = "") -> float:
    """The setting of the highest score (NaN, a diverged run, counts as lowest; ties go to the lower one). A
    single setting is the choice even unmeasured; raises :class:`train.TrainingDiverged` naming ``what`` when
    every one of several diverged."""
    if len(scores) > 1 and all(math.isnan(v) for v in scores.values()):
        raise train.TrainingDiverged(f"{what}: every setting tried diverged ({', '.join(map(str, scores))}): try "
                                     "lower learning rates.")
    return max(scores, key=lambda lr: (-math.inf if math.isnan(scores[lr]) else scores[lr], -lr))


def choose_rates(d, prof: env.Profile, changes=None, rates=None, seed: int | None = None,
                 progress: bool = True) -> dict:
    """Each change's learning rate, the best of ``rates`` (default ``prof.next_lrs``) at the table's epochs:
    one run a rate on three quarters of ``d``'s training images, top-1 on the quarter held out
    (:func:`hold_out`); a run that diverged scores NaN. ``seed`` (default ``2 * prof.next_seeds``: past the
    table's seeds and the control's) gives every run its start, so no reported run starts from the weights
    its rate was chosen with. The control takes AlexNet's rate (it is AlexNet).
    With one rate there is nothing to choose and nothing is trained. Returns ``{change: {"scores": {rate:
    top-1}, "best": rate}}``."""
    from tqdm.auto import tqdm

    rates = tuple(rates or prof.next_lrs)
    seed = 2 * prof.next_seeds if seed is None else seed
    changes = [c for c in (changes or DECADE_CHANGES) if c != CONTROL]
    if BASELINE not in changes:
        changes.insert(0, BASELINE)
    tune_part = hold_out(d, seed=seed)
    bar = tqdm(total=len(changes) * len(rates) if len(rates) > 1 else 0, desc="each change's learning rate",
               disable=not progress or len(rates) == 1)
    out = {}
    for change in changes:
        scores = {}
        for lr in rates:
            if len(rates) == 1:
                scores[lr] = math.nan
                continue
            try:
                scores[lr] = decade_run(change, tune_part, prof, seed, lr=lr)["accuracy"]
            except train.TrainingDiverged:
                scores[lr] = math.nan
            bar.update()
        out[change] = {"scores": scores, "best": best_setting(scores, change)}
    bar.close()
    out[CONTROL] = out[BASELINE]
    return out


def next_decade(d, prof: env.Profile, seeds: int, rates: dict, changes=None, progress: bool = True,
                keep=()) -> list[dict]:
    """Every change of :data:`DECADE_CHANGES` (or ``changes``) over ``seeds`` seeds at its rate in ``rates``
    (:func:`choose_rates`), the same seeds for every row (the control: the next ``seeds`` seeds), AlexNet's
    row first. Raises ``ValueError`` before any training for a change without a rate. Seed 0 of every row is
    measured after each epoch: its time-to-accuracy curve. Returns one row a change: ``{"change", "lr",
    "parameters", "multiply_adds", "values" (top-1 per seed), "mean", "spread", "diff"/"diff_spread" (the
    paired difference from AlexNet: positive is better), "beats_spread", "better", "seconds" (mean training
    seconds a run), "curve": {"seconds", "top1"} (seed 0, after each epoch)}`` (:func:`rules.paired_table`);
    ``"runs"`` keeps the full runs (with their models and histories) of the changes named in ``keep``."""
    from tqdm.auto import tqdm

    changes = [BASELINE] + [c for c in (changes or DECADE_CHANGES) if c != BASELINE]
    missing = [c for c in changes if c not in DECADE_CHANGES or c not in rates]
    if missing:
        raise ValueError(f"next_decade: no such change, or no chosen rate (choose_rates), for "
                         f"{', '.join(map(repr, missing))}; the changes are {', '.join(DECADE_CHANGES)}.")
    bar = tqdm(total=len(changes) * seeds, desc="one change at a time", disable=not progress)
    runs = {}
    for change in changes:
        runs[change] = []
        for seed in range(seeds):
            start = seed + seeds if change == CONTROL else seed
            try:
                run = decade_run(change, d, prof, start, every_epoch=seed == 0, lr=rates[change]["best"])
            except train.TrainingDiverged as err:
                raise train.TrainingDiverged(f"{change}, seed {start}, at its chosen rate: {err}") from err
            kept = run if change in keep else {k: v for k, v in run.items() if k != "model"}
            runs[change].append(kept)
            bar.update()
    bar.close()
    rows = paired_table({c: [r["accuracy"] for r in rs] for c, rs in runs.items()}, BASELINE, min_change=0.005)
    for row in rows:
        first = runs[row["change"]][0]
        h = first["history"]
        row.update(lr=rates[row["change"]]["best"], parameters=first["parameters"],
                   multiply_adds=first["multiply_adds"],
                   seconds=float(np.mean([r["training_seconds"] for r in runs[row["change"]]])),
                   curve={"seconds": np.cumsum(h.column("seconds")).tolist(), "top1": h.column("val_accuracy")})
        if row["change"] in keep:
            row["runs"] = runs[row["change"]]
    return rows


def rule_on_noise(seeds: int, trials: int = 100_000, seed: int = 0) -> float:
    """How often :func:`rules.paired_table`'s "beats the spread" fires on pure noise at ``seeds`` seeds: the
    share of ``trials`` draws of ``seeds`` paired differences from N(0, 1) that all have one sign and whose mean
    is above twice their spread (the rule's ``min_change`` left out: it only makes the rule stricter)."""
    diffs = np.random.default_rng(seed).standard_normal((trials, whole_number(seeds, "seeds", low=2)))
    same_sign = (diffs > 0).all(1) | (diffs < 0).all(1)
    return float((same_sign & (np.abs(diffs.mean(1)) > 2 * diffs.std(1))).mean())


# --- the recipe -----------------------------------------------------------------------------------

def overfit_one_batch(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int = 60,
                      lr: float = 0.01, softmax_twice: bool = False) -> list[float]:
    """Train ``model`` (in place) on one batch (uint8 ``images``, ``labels``) for ``steps`` steps of Adam at
    ``lr`` — the first check of Karpathy's "recipe for training neural networks" (2019): a network that
    cannot drive the loss of one batch to near zero has a bug. ``softmax_twice`` plants a classic one: the
    scores go through softmax before the loss, which applies (log-)softmax again. Returns the loss at each
    step."""
    x = loader.normalize(images)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        out = model(x)
        loss = F.cross_entropy(out.softmax(1) if softmax_twice else out, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def range_tests(d, prof: env.Profile, changes, seeds: int, steps: int = 100) -> dict:
    """:func:`train.lr_range_test` of each of ``changes`` over ``seeds``: ``{change: [result per seed]}``
    (from 1e-4 to 10, the change's recipe otherwise)."""
    out = {}
    for change in changes:
        out[change] = []
        for seed in range(seeds):
            env.seed_everything(seed)
            s = fit_settings(change, prof)
            out[change].append(train.lr_range_test(decade_model(change, prof, len(d.classes)),
                                                   (d.train_images, d.train_labels), start=1e-4, end=10.0,
                                                   steps=steps, batch_size=s["batch_size"], seed=seed,
                                                   weight_decay=s["weight_decay"], augment=s["augment"]))
    return out


def activation_statistics(change: str, d, prof: env.Profile, seed: int = 0, epochs: int | None = None,
                          lr: float | None = None) -> dict:
    """Train ``change``'s network for ``epochs`` (default the profile's) at ``lr`` (default
    :func:`default_rate`) while
    :class:`layers.ActivationHistograms` records its five ReLU layers at every step. Returns ``{"stats": the
    recorder, "accuracy", "history"}``."""
    env.seed_everything(seed)
    model = decade_model(change, prof, len(d.classes))
    with layers.ActivationHistograms(model, RELU_LAYERS) as stats:
        run = decade_run(change, d, prof, seed, model=model, **({"epochs": epochs} if epochs else {}),
                         **({"lr": lr} if lr else {}))
    return {"stats": stats, "accuracy": run["accuracy"], "history": run["history"]}

"""Lesson 09's claims: what the decade after AlexNet bought, one change at a time on Imagenette over seeds
(:data:`DECADE_CHANGES`, :func:`next_decade`), each change at its own learning rate chosen on held-out
training images (:func:`choose_rates`), beside a control (AlexNet on other seeds) and the verdict rule's
rate on noise (:func:`rule_on_noise`); the practical recipe measured on the same networks (overfit one
batch, the learning-rate range test, one-cycle, activation statistics); and transfer from five classes to
the five others with few labels, each way at its own setting (:func:`transfer`)."""

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
from .rules import claim_row, paired_table

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


def _best(scores: dict, what: str = "") -> float:
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
        out[change] = {"scores": scores, "best": _best(scores, change)}
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


# --- transfer -------------------------------------------------------------------------------------

def split_classes(d, first: int = 5):
    """``(d restricted to its first ``first`` classes, d restricted to the others)``, labels renumbered from 0.
    Raises ``ValueError`` unless both parts have a class (``first`` from 1 to the number of classes - 1)."""
    first = whole_number(first, "first", low=1, high=len(d.classes) - 1,
                         expected=f"a whole number of classes from 1 to {len(d.classes) - 1} (both parts need one)")

    def part(keep):
        keep = list(keep)
        index = {c: i for i, c in enumerate(keep)}
        tr = torch.isin(d.train_labels, torch.tensor(keep))
        va = torch.isin(d.val_labels, torch.tensor(keep))
        relabel = lambda y: torch.tensor([index[int(v)] for v in y], dtype=torch.long)
        return d._replace(train_images=d.train_images[tr], train_labels=relabel(d.train_labels[tr]),
                                   val_images=d.val_images[va], val_labels=relabel(d.val_labels[va]),
                                   classes=[d.classes[c] for c in keep])
    return part(range(first)), part(range(first, len(d.classes)))


def _drawn(d, seed: int) -> list[torch.Tensor]:
    """Each class's training-image indices of ``d`` in a seeded random order (one tensor a class)."""
    g = torch.Generator().manual_seed(seed)
    return [(lambda where: where[torch.randperm(len(where), generator=g)])((d.train_labels == c).nonzero().flatten())
            for c in range(len(d.classes))]


def few_labels(d, per_class: int, seed: int):
    """``d`` with ``per_class`` (a whole number >= 1) training images of each class (a seeded draw; fewer where
    a class has fewer)."""
    per_class = whole_number(per_class, "per_class")
    keep = torch.cat([order[:per_class] for order in _drawn(d, seed)])
    return d._replace(train_images=d.train_images[keep], train_labels=d.train_labels[keep])


def tuning_set(d, per_class: int, tune_per_class: int, seed: int):
    """``d`` with ``per_class`` training images of each class and, as its validation images, ``tune_per_class``
    other training images of each class, centre-cropped (a seeded draw; at most half of a class is held out):
    where the transfer section chooses each way's setting, away from the validation images it reports.
    Raises ``ValueError`` when no training image is left."""
    per_class = whole_number(per_class, "per_class")
    tune_per_class = whole_number(tune_per_class, "tune_per_class")
    orders = _drawn(d, seed)
    cut = [min(tune_per_class, len(order) // 2) for order in orders]       # a small class keeps half for training
    held = torch.cat([order[:k] for order, k in zip(orders, cut)])
    keep = torch.cat([order[k:k + per_class] for order, k in zip(orders, cut)])
    if len(keep) == 0:
        raise ValueError("tuning_set: no training images to learn from (every class has fewer than two).")
    return d._replace(train_images=d.train_images[keep], train_labels=d.train_labels[keep],
                      val_images=augment.center_crop(d.train_images[held], d.val_images.shape[-1]),
                      val_labels=d.train_labels[held])


def conv_features(model: nn.Module, images: torch.Tensor, size: int) -> torch.Tensor:
    """The mean of each of conv5's maps (after ReLU) for the centre ``size`` crop of each uint8 image:
    ``N x C`` features, what a linear probe reads."""
    crops = augment.center_crop(images, size) if images.shape[-1] != size else images
    out = []
    with layers.evaluating(model), torch.no_grad():
        for start in range(0, len(crops), 256):
            x = loader.normalize(crops[start:start + 256].to(layers.device_of(model)))
            out.append(model.features(x).mean((2, 3)).cpu())
    return torch.cat(out)


def linear_probe(model: nn.Module, d, size: int, strength: float = 1.0) -> float:
    """Top-1 on ``d``'s validation images of a logistic regression (scikit-learn, inverse regularization
    ``C=strength``) on ``model``'s frozen :func:`conv_features` of ``d``'s training images."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_x, val_x = conv_features(model, d.train_images, size), conv_features(model, d.val_images, size)
    scale = StandardScaler().fit(train_x.numpy())
    probe = LogisticRegression(C=strength, max_iter=2000).fit(scale.transform(train_x.numpy()), d.train_labels.numpy())
    return float((probe.predict(scale.transform(val_x.numpy())) == d.val_labels.numpy()).mean())


def with_new_head(model: nn.Module, num_classes: int) -> nn.Module:
    """A copy of a global-average-pooling ``model`` (a :class:`variants.AlexNetVariant` with ``gap=True``: its
    last layer is ``fc``) with a fresh last layer for ``num_classes``. Raises ``ValueError`` for another
    model."""
    if not isinstance(getattr(model, "fc", None), nn.Linear):
        raise ValueError(f"with_new_head expected a network with global average pooling and one last Linear layer "
                         f"named fc (AlexNetVariant with gap=True), got {type(model).__name__} without one.")
    num_classes = whole_number(num_classes, "num_classes")
    new = layers.copy_without_hooks(model)
    new.fc = nn.Linear(new.fc.in_features, num_classes)
    nn.init.normal_(new.fc.weight, 0.0, 0.01)
    nn.init.zeros_(new.fc.bias)
    return new


def transfer_epochs(images: int, prof: env.Profile) -> int:
    """How many epochs a transfer run on ``images`` training images trains for: enough for at least
    ``prof.next_transfer_steps`` steps (the same for every number of labels), counted as ``fit`` takes them, one
    step a batch and the last batch possibly short (ceil(images / batch size) steps an epoch)."""
    steps = max(1, -(-images // prof.next_batch_size))
    return max(prof.next_epochs, -(-prof.next_transfer_steps // steps))


TRANSFER_WAYS = ("probe", "fine-tune", "scratch")
PROBE_STRENGTHS = (0.01, 0.1, 1.0, 10.0)     # the probe's choices: logistic regression's C


def transfer_run(way: str, pretrained: nn.Module, few, prof: env.Profile, seed: int, setting: float) -> float:
    """Top-1 on ``few``'s validation images of one way of learning ``few`` (:func:`few_labels`) with
    ``pretrained`` (an :data:`ALL_TOGETHER` network): ``"probe"`` (:func:`linear_probe`, ``setting`` is its
    C), ``"fine-tune"`` (all of it with a new last layer) or ``"scratch"`` (a fresh network), those two for
    :func:`transfer_epochs` at learning rate ``setting``. A run that diverged scores NaN."""
    if way == "probe":
        return linear_probe(pretrained, few, prof.next_image_size, setting)
    if way not in TRANSFER_WAYS:
        raise ValueError(f"way must be one of {', '.join(TRANSFER_WAYS)}, got {way!r}.")
    env.seed_everything(seed)      # the new head's start is the seed's, whatever ran before
    model = with_new_head(pretrained, len(few.classes)) if way == "fine-tune" else None
    try:
        return decade_run(ALL_TOGETHER, few, prof, seed, model=model, lr=setting,
                          epochs=transfer_epochs(len(few.train_labels), prof))["accuracy"]
    except train.TrainingDiverged:
        return math.nan


def transfer(d, prof: env.Profile, seeds: int, pretrain_lr: float, per_class=(10, 100), tune_per_class: int = 50,
             progress: bool = True) -> dict:
    """Train the modern network (:data:`ALL_TOGETHER`) on every training image of the first five classes of
    ``d`` (``prof.next_pretrain_epochs`` at ``pretrain_lr``), then learn the other five from ``per_class``
    labelled images a class, three ways (:func:`transfer_run`): a linear probe on its frozen conv layers,
    fine-tuning all of it, and the same network trained from scratch on those images alone. Each way gets its
    own best setting (the probe's C from :data:`PROBE_STRENGTHS`, the others' rate from
    ``prof.next_transfer_lrs``), chosen for each ``per_class`` on a draw no reported seed uses, scored on
    ``tune_per_class`` other training images a class (:func:`tuning_set`). Each (n, seed) then draws its own
    images. The pretraining is done once (seed 0, at ``pretrain_lr``: the table's rate for this network), so
    the spread is that of the few-label runs alone. Returns ``{"pretrained_accuracy", "pretrain_seconds",
    "classes", "chosen": {n: {way: {"scores", "best"}}}, "rows": {n: {way: [top-1 per seed]}}}`` (top-1 on the
    five new classes' validation images)."""
    from tqdm.auto import tqdm

    first, second = split_classes(d)
    pretrained = decade_run(ALL_TOGETHER, first, prof, 0, lr=pretrain_lr, epochs=prof.next_pretrain_epochs)
    grids = {"probe": PROBE_STRENGTHS, "fine-tune": prof.next_transfer_lrs, "scratch": prof.next_transfer_lrs}
    tuning = sum(len(g) for w, g in grids.items() if len(g) > 1) * len(per_class)
    bar = tqdm(total=tuning + len(per_class) * seeds, desc="transfer", disable=not progress)
    chosen, rows = {}, {}
    for n in per_class:
        tune = tuning_set(second, n, tune_per_class, seed=seeds)    # a draw none of the reported seeds makes
        chosen[n] = {}
        for way, grid in grids.items():
            scores = {g: transfer_run(way, pretrained["model"], tune, prof, seeds, g) if len(grid) > 1 else math.nan
                      for g in grid}
            bar.update(len(grid) if len(grid) > 1 else 0)
            chosen[n][way] = {"scores": scores, "best": _best(scores, f"{way}, {n} a class")}
        rows[n] = {way: [] for way in TRANSFER_WAYS}
        for seed in range(seeds):
            few = few_labels(second, n, seed)
            for way in TRANSFER_WAYS:
                rows[n][way].append(transfer_run(way, pretrained["model"], few, prof, seed, chosen[n][way]["best"]))
            bar.update()
    bar.close()
    return {"pretrained_accuracy": pretrained["accuracy"], "pretrain_seconds": pretrained["training_seconds"],
            "rows": rows, "chosen": chosen, "classes": (first.classes, second.classes)}


# --- the claims report ----------------------------------------------------------------------------

def decade_claims(prof: env.Profile, seeds: int, progress: bool = True) -> list[dict]:
    """Lesson 09's claims with ``seeds`` seeds, as rows of the claims report (``benchmarks/seed_claims.py``):
    each change against AlexNet (the lesson asserts only "all together" beats it, on Imagenette), overfitting
    one batch against the planted softmax-twice bug, and transfer with the fewest labels against training
    from scratch (printed, not asserted: the better of the probe and fine-tuning). On the offline photos of the
    ``smoke`` profile nothing about Imagenette is asserted."""
    full = decade_data(prof)
    d = table_data(full, prof)
    real = not d.offline
    where = d.describe()
    rows = []
    rates = choose_rates(d, prof, progress=progress)
    table = next_decade(d, prof, seeds, rates, progress=progress)
    base = table[0]["values"]
    for r in (r for r in table[1:] if r["change"] != CONTROL):
        rows.append({"key": f"decade: {r['change']}", **claim_row(
            f"AlexNet with {'all the changes together' if r['change'] == ALL_TOGETHER else r['change']} beats AlexNet "
            "in top-1, beyond the spread, each at its best learning rate (lesson 09)",
            r["values"], base, "AlexNet", higher=True, reproduced=r["better"],
            asserted=real and r["change"] == ALL_TOGETHER, data=where)})
    right, twice = [], []
    for seed in range(seeds):
        env.seed_everything(seed)
        images = augment.center_crop(d.train_images[16 * seed:16 * seed + 16], prof.next_image_size)
        labels = d.train_labels[16 * seed:16 * seed + 16]
        right.append(overfit_one_batch(decade_model(ALL_TOGETHER, prof), images, labels, steps=100)[-1])
        env.seed_everything(seed)
        twice.append(overfit_one_batch(decade_model(ALL_TOGETHER, prof), images, labels, steps=100,
                                       softmax_twice=True)[-1])
    rows.append({"key": "decade: overfit one batch", **claim_row(
        "a correct network drives one batch's loss near zero; with softmax applied twice it cannot (lesson 09)",
        right, twice, "softmax applied twice", higher=False, reproduced=max(right) < min(twice) / 10,
        asserted=True, data=where)})
    moved = transfer(full, prof, seeds, rates[ALL_TOGETHER]["best"], progress=progress)
    few = min(moved["rows"])
    ways = {r["change"]: r for r in paired_table(moved["rows"][few], "scratch", min_change=0.01)}
    best = max(("probe", "fine-tune"), key=lambda w: ways[w]["mean"])
    rows.append({"key": "decade: transfer", **claim_row(
        f"conv layers trained on five classes beat training from scratch on the other five with {few} labels a "
        f"class ({best}, the better of probe and fine-tuning; lesson 09)", ways[best]["values"],
        ways["scratch"]["values"], "from scratch", higher=True,
        reproduced=ways["probe"]["better"] or ways["fine-tune"]["better"], asserted=False, data=where)})
    return rows

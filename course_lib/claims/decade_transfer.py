"""Lesson 09's transfer section: the modern network trained on five Imagenette classes, then the five others
learnt from few labels three ways (a linear probe, fine-tuning, from scratch), each way at its own setting
(:func:`transfer`); and the lesson's claims as rows of the claims report (:func:`decade_claims`, which
reaches every part of the lesson)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .. import augment, env, layers, loader, train
from ..checks import whole_number
from .next_decade import (ALL_TOGETHER, CONTROL, best_setting, choose_rates, decade_data, decade_model,
                          decade_run, next_decade, overfit_one_batch, table_data)
from .rules import claim_row, paired_table


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
            chosen[n][way] = {"scores": scores, "best": best_setting(scores, f"{way}, {n} a class")}
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

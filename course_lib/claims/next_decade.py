"""Lesson 09's claims: what the decade after AlexNet bought, one change at a time on Imagenette over seeds
(:data:`DECADE_CHANGES`, :func:`next_decade`); the practical recipe measured on the same networks (overfit
one batch, the learning-rate range test, one-cycle, activation statistics); and transfer from five classes
to the five others with few labels (:func:`transfer`)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import augment, env, imagenette, layers, loader, models, train
from ..models import alexnet_variants as variants
from ..checks import whole_number
from .rules import claim_row, paired_table

BASELINE = "AlexNet (2012)"
# lesson 09's table: name -> (AlexNetVariant keyword arguments, fit keyword arguments)
DECADE_CHANGES = {
    BASELINE: ({}, {}),
    **{name: (kwargs, {}) for name, kwargs in variants.ARCHITECTURE_CHANGES.items()},
    "label smoothing 0.1": ({}, {"label_smoothing": 0.1}),
    "all together": (variants.ALL_CHANGES, {"label_smoothing": 0.1}),
}
ALL_TOGETHER = "all together"
RELU_LAYERS = ("act1", "act2", "act3", "act4", "act5")


def decade_data(prof: env.Profile) -> imagenette.ImagenetteData:
    """Imagenette at lesson 09's sizes for profile ``prof`` (``next_image_size`` px, ``next_train_size``
    training images; the offline photos in ``smoke``)."""
    return imagenette.for_profile(dataclasses.replace(prof, image_size=prof.next_image_size,
                                                      imagenette_train_size=prof.next_train_size))


def decade_model(change: str, prof: env.Profile, num_classes: int = 10) -> nn.Module:
    """The :class:`variants.AlexNetVariant` of ``change`` (a key of :data:`DECADE_CHANGES`) at ``prof``'s sizes."""
    return variants.AlexNetVariant(num_classes=num_classes, image_size=prof.next_image_size, width=prof.next_width,
                                 **DECADE_CHANGES[change][0])


def fit_settings(change: str, prof: env.Profile, **overrides) -> dict:
    """``fit``'s keyword arguments for ``change``: the course's recipe at ``prof``'s sizes (SGD with Nesterov
    momentum, warm-up and cosine, weight decay 5e-4, the paper's random crops and flips), then the change's."""
    settings = {"epochs": prof.next_epochs, "lr": prof.next_lr, "batch_size": prof.next_batch_size,
                "weight_decay": 5e-4, "augment": augment.crop_flip(prof.next_image_size)}
    return {**settings, **DECADE_CHANGES[change][1], **overrides}


def decade_run(change: str, d, prof: env.Profile, seed: int, *, progress: bool = False, model=None,
               every_epoch: bool = False, **overrides) -> dict:
    """Train :func:`decade_model` of ``change`` (or ``model``) on ``d`` (:class:`imagenette.ImagenetteData`)
    with :func:`fit_settings`. ``every_epoch``: measure the validation images after every epoch (the
    history's curves), else once at the end: a quarter less work on the table's runs, and far less on the
    few-label runs of :func:`transfer`, whose epochs are one step each (with 10 images a class, 200 steps
    are 200 epochs: measured after each, the cpu profile's transfer cell took over an hour).
    Returns ``{"accuracy": top-1 on the validation images, "model", "history", "parameters",
    "multiply_adds" (per image), "seconds"}``."""
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
            "seconds": time.perf_counter() - start}


def next_decade(d, prof: env.Profile, seeds: int, changes=None, progress: bool = True, keep=()) -> list[dict]:
    """Every change of :data:`DECADE_CHANGES` (or ``changes``) over ``seeds`` seeds, the same seeds for
    every row, the baseline first. Returns one row a change: ``{"change", "parameters", "multiply_adds",
    "values" (top-1 per seed), "mean", "spread", "diff"/"diff_spread" (the paired difference from AlexNet:
    positive is better), "beats_spread", "seconds"}`` (:func:`rules.paired_table`); ``"runs"`` keeps the
    full runs (with their models and histories) of the changes named in ``keep``."""
    from tqdm.auto import tqdm

    changes = list(changes or DECADE_CHANGES)
    if BASELINE not in changes:
        changes.insert(0, BASELINE)
    bar = tqdm(total=len(changes) * seeds, desc="one change at a time", disable=not progress)
    runs = {}
    for change in changes:
        runs[change] = []
        for seed in range(seeds):
            run = decade_run(change, d, prof, seed, every_epoch=change in keep)
            kept = run if change in keep else {k: v for k, v in run.items() if k not in ("model", "history")}
            runs[change].append(kept)
            bar.update()
    bar.close()
    rows = paired_table({c: [r["accuracy"] for r in rs] for c, rs in runs.items()}, BASELINE, min_change=0.005)
    for row in rows:
        first = runs[row["change"]][0]
        row.update(parameters=first["parameters"], multiply_adds=first["multiply_adds"],
                   seconds=float(np.mean([r["seconds"] for r in runs[row["change"]]])))
        if row["change"] in keep:
            row["runs"] = runs[row["change"]]
    return rows


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


def activation_statistics(change: str, d, prof: env.Profile, seed: int = 0, epochs: int | None = None) -> dict:
    """Train ``change``'s network for ``epochs`` (default the profile's) while
    :class:`layers.ActivationHistograms` records its five ReLU layers at every step. Returns ``{"stats": the
    recorder, "accuracy", "history"}``."""
    env.seed_everything(seed)
    model = decade_model(change, prof, len(d.classes))
    with layers.ActivationHistograms(model, RELU_LAYERS) as stats:
        run = decade_run(change, d, prof, seed, model=model, **({"epochs": epochs} if epochs else {}))
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


def few_labels(d, per_class: int, seed: int):
    """``d`` with ``per_class`` (a whole number >= 1) training images of each class (a seeded draw; fewer where
    a class has fewer)."""
    per_class = whole_number(per_class, "per_class")
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(len(d.classes)):
        where = (d.train_labels == c).nonzero().flatten()
        chosen.append(where[torch.randperm(len(where), generator=g)[:per_class]])
    keep = torch.cat(chosen)
    return d._replace(train_images=d.train_images[keep], train_labels=d.train_labels[keep])


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


def linear_probe(model: nn.Module, d, size: int) -> float:
    """Top-1 on ``d``'s validation images of a logistic regression (scikit-learn) on ``model``'s frozen
    :func:`conv_features` of ``d``'s training images."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_x, val_x = conv_features(model, d.train_images, size), conv_features(model, d.val_images, size)
    scale = StandardScaler().fit(train_x.numpy())
    probe = LogisticRegression(max_iter=2000).fit(scale.transform(train_x.numpy()), d.train_labels.numpy())
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


def transfer(d, prof: env.Profile, seeds: int, per_class=(10, 100), progress: bool = True) -> dict:
    """Train the modern network (:data:`ALL_TOGETHER`) on the first five classes of ``d``, then learn the other
    five from ``per_class`` labelled images a class, three ways: a linear probe on its frozen conv layers,
    fine-tuning all of it (a new last layer, a tenth of the learning rate), and the same network trained
    from scratch on those images alone. Each (n, seed) draws its own images; the pretraining is done once
    (seed 0). Returns ``{"pretrained_accuracy", "rows": {n: {"probe": [...], "fine-tune": [...],
    "scratch": [...]}}}`` (top-1 on the five new classes' validation images, one value per seed)."""
    from tqdm.auto import tqdm

    first, second = split_classes(d)
    pretrained = decade_run(ALL_TOGETHER, first, prof, 0)
    bar = tqdm(total=len(per_class) * seeds, desc="transfer", disable=not progress)
    rows = {}
    for n in per_class:
        rows[n] = {"probe": [], "fine-tune": [], "scratch": []}
        for seed in range(seeds):
            few = few_labels(second, n, seed)
            epochs = transfer_epochs(len(few.train_labels), prof)
            rows[n]["probe"].append(linear_probe(pretrained["model"], few, prof.next_image_size))
            head = with_new_head(pretrained["model"], len(few.classes))
            tuned = decade_run(ALL_TOGETHER, few, prof, seed, model=head, epochs=epochs, lr=prof.next_lr / 10)
            rows[n]["fine-tune"].append(tuned["accuracy"])
            rows[n]["scratch"].append(decade_run(ALL_TOGETHER, few, prof, seed, epochs=epochs)["accuracy"])
            bar.update()
    bar.close()
    return {"pretrained_accuracy": pretrained["accuracy"], "rows": rows, "classes": (first.classes, second.classes)}


# --- the claims report ----------------------------------------------------------------------------

def decade_claims(prof: env.Profile, seeds: int, progress: bool = True) -> list[dict]:
    """Lesson 09's claims with ``seeds`` seeds, as rows of the claims report (``benchmarks/seed_claims.py``):
    each change against AlexNet (the lesson asserts only "all together" beats it, on Imagenette), overfitting
    one batch against the planted softmax-twice bug, and transfer with the fewest labels against training
    from scratch (printed, not asserted: the better of the probe and fine-tuning). On the offline photos of the
    ``smoke`` profile nothing about Imagenette is asserted."""
    d = decade_data(prof)
    real = not d.offline
    where = d.describe()
    rows = []
    table = next_decade(d, prof, seeds, progress=progress)
    base = table[0]["values"]
    for r in table[1:]:
        rows.append({"key": f"decade: {r['change']}", **claim_row(
            f"AlexNet with {'all the changes together' if r['change'] == ALL_TOGETHER else r['change']} beats AlexNet "
            "(2012) in top-1, beyond the spread (lesson 09)",
            r["values"], base, "AlexNet (2012)", higher=True, reproduced=r["better"],
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
    moved = transfer(d, prof, seeds, progress=progress)
    few = min(moved["rows"])
    ways = {r["change"]: r for r in paired_table(moved["rows"][few], "scratch", min_change=0.01)}
    best = max(("probe", "fine-tune"), key=lambda w: ways[w]["mean"])
    rows.append({"key": "decade: transfer", **claim_row(
        f"conv layers trained on five classes beat training from scratch on the other five with {few} labels a "
        f"class ({best}, the better of probe and fine-tuning; lesson 09)", ways[best]["values"],
        ways["scratch"]["values"], "from scratch", higher=True,
        reproduced=ways["probe"]["better"] or ways["fine-tune"]["better"], asserted=False, data=where)})
    return rows

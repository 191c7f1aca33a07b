"""What later years bought, one change at a time, over seeds: "what thirty years bought" (lesson 02, and
``benchmarks/lenet1_mnist.py``): LeNet-1 as published, then one modern change at a time, each judged by
whether it moved the test error by more than the spread of the paired differences."""

from __future__ import annotations

import numpy as np

from .. import augment, env, models, train
from .rules import paired_table


# "What thirty years bought" (lesson 02, benchmarks/lenet1_mnist.py): LeNet-1 as published, then one
# modern change at a time. name -> (model keyword arguments, fit keyword arguments)
THIRTY_YEARS_CHANGES = {
    "LeNet-1 as published": ({}, {}),
    "ReLU instead of tanh": ({"activation": "relu"}, {}),
    "max-pooling instead of subsampling": ({"pool": "max"}, {}),
    "AdamW instead of SGD with momentum": ({}, {"optimizer": "adamw", "lr": 0.003}),
    "random shifts of up to 2 px": ({}, {"augment": "shifts"}),
    "2x wider (8 and 24 maps)": ({"width": 2}, {}),
    "all five together": ({"activation": "relu", "pool": "max", "width": 2},
                          {"optimizer": "adamw", "lr": 0.003, "augment": "shifts"}),
}


def lenet1_with_change(change: str, train_data, test_data, seed: int, epochs: int, progress: bool = False) -> dict:
    """Train LeNet-1 with one of :data:`THIRTY_YEARS_CHANGES` (``fit``'s defaults otherwise: SGD with Nesterov
    momentum, lr 0.1 with warm-up and cosine, batch 64) and return ``{"error": test error, "parameters",
    "seconds"}``. ``train_data``/``test_data``: ``(uint8 images N x 1 x 28 x 28, labels)``."""
    import time

    model_kwargs, fit_kwargs = THIRTY_YEARS_CHANGES[change]
    fit_kwargs = dict(fit_kwargs)
    if fit_kwargs.get("augment") == "shifts":
        fit_kwargs["augment"] = augment.shifts(2)
    env.seed_everything(seed)
    model = models.LeNet1(**model_kwargs)
    start = time.perf_counter()
    train.fit(model, train_data, epochs=epochs, seed=seed, progress=progress, **fit_kwargs)
    seconds = time.perf_counter() - start
    return {"error": train.evaluate(model, test_data)["error"], "parameters": models.count_parameters(model),
            "seconds": seconds}


def thirty_years(train_data, test_data, seeds: int, epochs: int, changes=None, progress: bool = True) -> list[dict]:
    """LeNet-1 with each of ``changes`` (default: all of :data:`THIRTY_YEARS_CHANGES`) over ``seeds`` seeds, the
    same seeds for every row. Returns one dict per change: ``{"change", "parameters", "errors" (one per
    seed), "error" (mean), "spread" (std), "diff"/"diff_spread" (mean and std over seeds of the paired
    difference from the published net; negative: fewer errors), "beats_spread", "seconds"}``.
    ``beats_spread``: the change moved the error the same way in every seed, by more than twice the
    spread of the paired differences (:func:`claims.check_rise` on the errors)."""
    from tqdm.auto import tqdm

    changes = list(changes or THIRTY_YEARS_CHANGES)
    base = "LeNet-1 as published"
    if base not in changes:
        changes.insert(0, base)
    bar = tqdm(total=len(changes) * seeds, desc="thirty years", disable=not progress)
    runs = {}
    for change in changes:
        runs[change] = []
        for seed in range(seeds):
            runs[change].append(lenet1_with_change(change, train_data, test_data, seed, epochs))
            bar.update()
    bar.close()
    rows = []
    for row in paired_table({c: [r["error"] for r in rs] for c, rs in runs.items()}, base, 0.0005, higher=False):
        results = runs[row["change"]]
        rows.append({"change": row["change"], "parameters": results[0]["parameters"], "errors": row["values"],
                     "error": row["mean"], "spread": row["spread"], "diff": row["diff"],
                     "diff_spread": row["diff_spread"], "beats_spread": row["beats_spread"],
                     "seconds": float(np.mean([r["seconds"] for r in results]))})
    return rows

"""The recipes lessons share, so that they cannot drift apart: AlexNet on Imagenette (lessons 04 and 05:
the same data, the same training, the same checkpoints) and the trained LeNet-1 (lessons 02 and 06).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from . import augment, env, imagenette, models, train
from .files import data_root
from .loader import take


class ImagenetteData(NamedTuple):
    """The data of lessons 04-05: ``train_images`` uint8 ``N x 3 x C x C`` (C = the cache side, 8/7
    of the crop, as 256 is to 224) with ``train_labels``; ``val_images`` centre crops ``M x 3 x S x S``
    (S = the profile's image size) with ``val_labels``; the class names; and ``offline``: True when
    the images are scikit-image's photos standing in for Imagenette (the ``smoke`` profile)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    classes: list[str]
    offline: bool


def imagenette_data(prof: env.Profile, variant: str = "imagenette") -> ImagenetteData:
    """Load (downloading once) Imagenette or Imagewoof at the sizes of profile ``prof``; in ``smoke``,
    the offline folder of real photos in Imagenette's layout. Training images are cut to the profile's
    ``imagenette_train_size`` (a seeded subset)."""
    cache = round(prof.image_size * 8 / 7)
    if prof.name == "smoke":
        root = imagenette.offline_folder()
        train_set = imagenette.load("train", root=root, download=False, resolution=cache)
        val_set = imagenette.load("val", root=root, download=False, resolution=cache)
    else:
        train_set = imagenette.load("train", variant=variant, size=160, resolution=cache)
        val_set = imagenette.load("val", variant=variant, size=160, resolution=cache)
    x, y = take(train_set.images, train_set.labels, prof.imagenette_train_size)
    return ImagenetteData(x, y, augment.center_crop(val_set.images, prof.image_size), val_set.labels,
                          list(train_set.classes), prof.name == "smoke")


def train_alexnet(prof: env.Profile, d: ImagenetteData, streams: int = 2, seed: int = 0,
                  progress: bool = True, resumable: bool = False) -> tuple[torch.nn.Module, train.History]:
    """AlexNet (``streams`` 2 or 1) trained with the course's recipe at profile ``prof``'s sizes: SGD with
    warm-up and cosine, weight decay 5e-4, label smoothing 0.1, the paper's random crops and flips on the
    device. Returns ``(model, history)``; validation accuracy is measured on the centre crops.
    ``resumable``: write ``fit``'s checkpoint after every epoch to :func:`run_path`, and continue from
    it (a finished run is loaded, not trained again)."""
    env.seed_everything(seed)
    model = models.AlexNet(num_classes=len(d.classes), streams=streams)
    history = train.fit(model, (d.train_images, d.train_labels), (d.val_images, d.val_labels),
                        epochs=prof.alexnet_epochs, lr=prof.alexnet_lr, batch_size=prof.alexnet_batch_size,
                        weight_decay=5e-4, label_smoothing=0.1, augment=augment.crop_flip(prof.image_size),
                        seed=seed, progress=progress,
                        checkpoint=run_path(prof, d, streams, seed) if resumable else None)
    return model, history


def run_path(prof: env.Profile, d: ImagenetteData, streams: int, seed: int) -> Path:
    """Where a resumable AlexNet run (:func:`train_alexnet`) keeps its ``fit`` checkpoint: one file per
    data, streams, seed, epochs and image size, so that runs of other settings never resume each other."""
    import hashlib

    data = hashlib.sha1(repr((d.classes, len(d.train_labels), d.offline)).encode()).hexdigest()[:8]
    return (data_root() / "checkpoints" / "runs" /
            f"alexnet-{streams}s-{data}-{prof.image_size}px-{prof.alexnet_epochs}ep-seed{seed}.pt")


def checkpoint_path(prof: env.Profile, streams: int) -> Path:
    """Where lesson 04 saves, and lesson 05 finds, the trained AlexNet of this profile."""
    return data_root() / "checkpoints" / f"alexnet-{prof.name}-{streams}stream{'s' if streams > 1 else ''}.pt"


def save_alexnet(prof: env.Profile, model: torch.nn.Module, history: train.History, d: ImagenetteData) -> Path:
    """Save a trained AlexNet and what it was trained on (atomically). Returns the path."""
    path = checkpoint_path(prof, model.streams)
    train.save_checkpoint(path, {"model": model.state_dict(), "classes": d.classes, "profile": prof.name,
                                 "epochs": prof.alexnet_epochs, "image_size": prof.image_size,
                                 "val_accuracy": history.last["val_accuracy"], "offline": d.offline})
    return path


def load_or_train_alexnet(prof: env.Profile, d: ImagenetteData, streams: int = 2) -> tuple[torch.nn.Module, dict]:
    """Lesson 04's AlexNet from its checkpoint when it matches this profile and data, else trained now
    with :func:`train_alexnet` (and saved). Returns ``(model in eval mode on the course device, info)``
    with info ``{"val_accuracy", "epochs", "source"}`` (source: ``"checkpoint"`` or ``"trained now"``)."""
    path = checkpoint_path(prof, streams)
    saved = train.load_checkpoint(path) if path.exists() else None
    model = models.AlexNet(num_classes=len(d.classes), streams=streams)
    if saved is not None and saved["classes"] == d.classes and saved["image_size"] == prof.image_size:
        model.load_state_dict(saved["model"])
        info = {"val_accuracy": saved["val_accuracy"], "epochs": saved["epochs"], "source": f"checkpoint {path.relative_to(data_root())}"}
    else:
        model, history = train_alexnet(prof, d, streams)
        save_alexnet(prof, model, history, d)
        info = {"val_accuracy": history.last["val_accuracy"], "epochs": prof.alexnet_epochs, "source": "trained now"}
    return model.to(env.device()).eval(), info


def lenet1_checkpoint_path(prof: env.Profile) -> Path:
    """Where lesson 02 saves, and lesson 06 finds, the trained LeNet-1 of this profile."""
    return data_root() / "checkpoints" / f"lenet1-{prof.name}.pt"


def save_lenet1(prof: env.Profile, model: torch.nn.Module, test_error: float) -> Path:
    """Save lesson 02's LeNet-1 (its weights and test error) atomically; returns the path."""
    path = lenet1_checkpoint_path(prof)
    train.save_checkpoint(path, {"model": model.state_dict(), "test_error": float(test_error),
                                 "profile": prof.name})
    return path


def load_lenet1(prof: env.Profile) -> tuple[torch.nn.Module, dict]:
    """Lesson 02's LeNet-1 from its checkpoint when there is one for this profile, else the course's
    reference LeNet-1 trained on all of MNIST (:func:`references.load`, ``"lenet1-mnist"``): no training
    here. Returns ``(model in eval mode on the course device, info)`` with info ``{"test_error" (as
    measured when it was saved, on its own test set), "source" (a sentence naming the network)}``."""
    from . import references

    path = lenet1_checkpoint_path(prof)
    if path.exists():
        try:
            saved = train.load_checkpoint(path)
            model = models.LeNet1()
            model.load_state_dict(saved["model"])
            return model.to(env.device()).eval(), {
                "test_error": saved["test_error"],
                "source": f"your LeNet-1 from lesson 02 (checkpoint {path.name}, profile {prof.name})"}
        except (RuntimeError, KeyError):
            pass    # from another version of the course: use the reference instead
    model, record = references.load("lenet1-mnist")
    settings = record["settings"]
    return model.to(env.device()).eval(), {
        "test_error": record["accuracy"]["test_error"],
        "source": (f"the course's reference LeNet-1 (trained on all {record['data']['train']:,} MNIST training "
                   f"digits, {settings['epochs']} epochs; lesson 02 has not saved one in this profile)")}


# "What thirty years bought" (lesson 02, benchmarks/lenet1_mnist.py): LeNet-1 as published, then one
# modern change at a time. name -> (model keyword arguments, fit keyword arguments)
MODERN_CHANGES = {
    "LeNet-1 as published": ({}, {}),
    "ReLU instead of tanh": ({"activation": "relu"}, {}),
    "max-pooling instead of subsampling": ({"pool": "max"}, {}),
    "AdamW instead of SGD with momentum": ({}, {"optimizer": "adamw", "lr": 0.003}),
    "random shifts of up to 2 px": ({}, {"augment": "shifts"}),
    "2x wider (8 and 24 maps)": ({"width": 2}, {}),
    "all five together": ({"activation": "relu", "pool": "max", "width": 2},
                          {"optimizer": "adamw", "lr": 0.003, "augment": "shifts"}),
}


def modern_lenet1(change: str, train_data, test_data, seed: int, epochs: int, progress: bool = False) -> dict:
    """Train LeNet-1 with one of :data:`MODERN_CHANGES` (``fit``'s defaults otherwise: SGD with Nesterov
    momentum, lr 0.1 with warm-up and cosine, batch 64) and return ``{"error": test error, "parameters",
    "seconds"}``. ``train_data``/``test_data``: ``(uint8 images N x 1 x 28 x 28, labels)``."""
    import time

    from .models import count_parameters

    model_kwargs, fit_kwargs = MODERN_CHANGES[change]
    fit_kwargs = dict(fit_kwargs)
    if fit_kwargs.get("augment") == "shifts":
        fit_kwargs["augment"] = augment.shifts(2)
    env.seed_everything(seed)
    model = models.LeNet1(**model_kwargs)
    start = time.perf_counter()
    train.fit(model, train_data, epochs=epochs, seed=seed, progress=progress, **fit_kwargs)
    seconds = time.perf_counter() - start
    return {"error": train.evaluate(model, test_data)["error"], "parameters": count_parameters(model),
            "seconds": seconds}


def thirty_years(train_data, test_data, seeds: int, epochs: int, changes=None, progress: bool = True) -> list[dict]:
    """LeNet-1 with each of ``changes`` (default: all of :data:`MODERN_CHANGES`) over ``seeds`` seeds, the
    same seeds for every row. Returns one dict per change: ``{"change", "parameters", "errors" (one per
    seed), "error" (mean), "spread" (std), "diff"/"diff_spread" (mean and std over seeds of the paired
    difference from the published net; negative: fewer errors), "beats_spread", "seconds"}``.
    ``beats_spread``: the change moved the error the same way in every seed, by more than twice the
    spread of the paired differences (:func:`claims.check_rise` on the errors)."""
    from tqdm.auto import tqdm

    from .claims import check_rise

    changes = list(changes or MODERN_CHANGES)
    base = "LeNet-1 as published"
    if base not in changes:
        changes.insert(0, base)
    bar = tqdm(total=len(changes) * seeds, desc="thirty years", disable=not progress)
    runs = {}
    for change in changes:
        runs[change] = []
        for seed in range(seeds):
            runs[change].append(modern_lenet1(change, train_data, test_data, seed, epochs))
            bar.update()
    bar.close()
    baseline = np.array([r["error"] for r in runs[base]])
    rows = []
    for change, results in runs.items():
        errors = np.array([r["error"] for r in results])
        diff = errors - baseline
        better, worse = check_rise(errors, baseline, 0.0005), check_rise(baseline, errors, 0.0005)
        rows.append({"change": change, "parameters": results[0]["parameters"], "errors": errors.tolist(),
                     "error": float(errors.mean()), "spread": float(errors.std()), "diff": float(diff.mean()),
                     "diff_spread": float(diff.std()), "beats_spread": change != base and
                     (better["reproduced"] or worse["reproduced"]),
                     "seconds": float(np.mean([r["seconds"] for r in results]))})
    return rows


class PhotoAlexNet(NamedTuple):
    """An AlexNet trained on real photos, for lesson 06: the model (eval mode, course device), its class
    names, the layer Grad-CAM reads (the last convolution's ReLU), the input side it reads, and where
    it came from."""

    model: torch.nn.Module
    classes: list[str]
    cam_layer: str
    size: int
    source: str


def photo_alexnet(prof: env.Profile, download: bool | None = None) -> tuple[PhotoAlexNet | None, str]:
    """torchvision's ImageNet AlexNet when its weights are in torch's cache (or, with ``download``,
    default: outside the ``smoke`` profile, can be downloaded), else lesson 04's AlexNet from its
    checkpoint. Returns ``(PhotoAlexNet or None, a sentence saying what was found)``."""
    import torchvision

    weights = torchvision.models.AlexNet_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    download = prof.name != "smoke" if download is None else download
    tried = ""
    if cached.exists() or download:
        try:
            model = torchvision.models.alexnet(weights=weights).to(env.device()).eval()
            return (PhotoAlexNet(model, list(weights.meta["categories"]), "features.11", 224,
                                      "torchvision's ImageNet weights"),
                    f"Using torchvision's AlexNet trained on ImageNet (weights {cached.name}).")
        except (OSError, RuntimeError) as err:   # offline, or a broken download
            tried = f"torchvision's ImageNet weights could not be loaded ({type(err).__name__}: {err}). "
    path = checkpoint_path(prof, 2)
    if path.exists():
        saved = train.load_checkpoint(path)
        model = models.AlexNet(num_classes=len(saved["classes"]), streams=2)
        model.load_state_dict(saved["model"])
        return (PhotoAlexNet(model.to(env.device()).eval(), list(saved["classes"]), "act5",
                                  saved["image_size"], f"lesson 04's checkpoint {path.name}"),
                tried + f"Using lesson 04's AlexNet ({path.name}, validation accuracy "
                        f"{saved['val_accuracy']:.2f}).")
    return None, (tried + f"No trained AlexNet here: torchvision's ImageNet weights are not in {cached.parent} "
                  f"and lesson 04 has not saved {path.name}. Run lesson 04 (or, online, a profile other "
                  "than smoke) to see AlexNet's maps; the digits above show every method.")

"""The AlexNet-on-Imagenette recipe that lessons 04 and 05 share: the same data, the same training,
the same checkpoints, so that the two lessons cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

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
                  progress: bool = True) -> tuple[torch.nn.Module, train.History]:
    """AlexNet (``streams`` 2 or 1) trained with the course's recipe at profile ``prof``'s sizes: SGD with
    warm-up and cosine, weight decay 5e-4, label smoothing 0.1, the paper's random crops and flips on the
    device. Returns ``(model, history)``; validation accuracy is measured on the centre crops."""
    env.seed_everything(seed)
    model = models.AlexNet(num_classes=len(d.classes), streams=streams)
    history = train.fit(model, (d.train_images, d.train_labels), (d.val_images, d.val_labels),
                        epochs=prof.alexnet_epochs, lr=prof.alexnet_lr, batch_size=prof.alexnet_batch_size,
                        weight_decay=5e-4, label_smoothing=0.1, augment=augment.crop_flip(prof.image_size),
                        seed=seed, progress=progress)
    return model, history


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
        info = {"val_accuracy": saved["val_accuracy"], "epochs": saved["epochs"], "source": f"checkpoint {path}"}
    else:
        model, history = train_alexnet(prof, d, streams)
        save_alexnet(prof, model, history, d)
        info = {"val_accuracy": history.last["val_accuracy"], "epochs": prof.alexnet_epochs, "source": "trained now"}
    return model.to(env.device()).eval(), info

"""The trained networks lessons share, so that they cannot drift apart: AlexNet on Imagenette (lessons 04
and 05: the same training, the same checkpoints), the trained LeNet-1 (lessons 02 and 06), and an AlexNet
trained on photos for lesson 06 (torchvision's ImageNet weights, or lesson 04's).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import torch

from . import augment, env, models, references, train
from .checkpoints import load_checkpoint, save_checkpoint
from .files import data_root
from .history import History
from .imagenette import ImagenetteData


def train_alexnet(prof: env.Profile, d: ImagenetteData, streams: int = 2, seed: int = 0, *,
                  progress: bool = True, resumable: bool = False,
                  crops: str = "fixed size") -> tuple[torch.nn.Module, History]:
    """AlexNet (``streams`` 2 or 1) trained with the course's recipe at profile ``prof``'s sizes: SGD with
    warm-up and cosine, weight decay 5e-4, label smoothing 0.1, random crops and flips on the device:
    ``crops`` ``"fixed size"`` (the paper's) or ``"resized"`` (rectangles of 35-100 % of the image resized to
    the crop, :func:`augment.random_resized_crop_flip`: what the reference networks train with). Returns
    ``(model, history)``; validation accuracy is measured on the centre crops.
    ``resumable``: write ``fit``'s checkpoint after every epoch to :func:`run_path`, and continue from
    it (a finished run is loaded, not trained again)."""
    env.seed_everything(seed)
    model = models.AlexNet(num_classes=len(d.classes), streams=streams)
    history = train.fit(model, (d.train_images, d.train_labels), (d.val_images, d.val_labels),
                        epochs=prof.alexnet_epochs, lr=prof.alexnet_lr, batch_size=prof.alexnet_batch_size,
                        weight_decay=5e-4, label_smoothing=0.1, augment=_crops(crops, prof.image_size),
                        seed=seed, progress=progress,
                        checkpoint=run_path(prof, d, streams, seed, crops) if resumable else None)
    return model, history


def _crops(kind: str, size: int):
    if kind == "fixed size":
        return augment.crop_flip(size)
    if kind == "resized":
        return augment.resized_crop_flip(size)
    raise ValueError(f"crops must be 'fixed size' or 'resized', got {kind!r}.")


def run_path(prof: env.Profile, d: ImagenetteData, streams: int, seed: int, crops: str = "fixed size") -> Path:
    """Where a resumable AlexNet run (:func:`train_alexnet`) keeps its ``fit`` checkpoint: one file per
    data, streams, seed, epochs, image size and crops, so that runs of other settings never resume each other."""
    import hashlib

    data = hashlib.sha1(repr((d.classes, len(d.train_labels), d.offline)).encode()).hexdigest()[:8]
    return (data_root() / "checkpoints" / "runs" /
            f"alexnet-{streams}s-{data}-{prof.image_size}px-{prof.alexnet_epochs}ep-seed{seed}"
            f"{'-resized' if crops == 'resized' else ''}.pt")


def checkpoint_path(prof: env.Profile, streams: int) -> Path:
    """Where lesson 04 saves, and lesson 05 finds, the trained AlexNet of this profile."""
    return data_root() / "checkpoints" / f"alexnet-{prof.name}-{streams}stream{'s' if streams > 1 else ''}.pt"


def save_alexnet(prof: env.Profile, model: torch.nn.Module, history: History, d: ImagenetteData) -> Path:
    """Save a trained AlexNet and what it was trained on (atomically). Returns the path."""
    path = checkpoint_path(prof, model.streams)
    save_checkpoint(path, {"model": model.state_dict(), "classes": d.classes, "profile": prof.name,
                                 "epochs": prof.alexnet_epochs, "image_size": prof.image_size,
                                 "val_accuracy": history.last["val_accuracy"], "offline": d.offline})
    return path


def load_or_train_alexnet(prof: env.Profile, d: ImagenetteData, streams: int = 2) -> tuple[torch.nn.Module, dict]:
    """Lesson 04's AlexNet from its checkpoint when it matches this profile and data, else trained now
    with :func:`train_alexnet` (and saved). Returns ``(model in eval mode on the course device, info)``
    with info ``{"val_accuracy", "epochs", "source"}`` (source: ``"checkpoint"`` or ``"trained now"``)."""
    path = checkpoint_path(prof, streams)
    saved = _matching_checkpoint(path, d, prof)
    model = models.AlexNet(num_classes=len(d.classes), streams=streams)
    if saved is not None:
        model.load_state_dict(saved["model"])
        info = {"val_accuracy": saved["val_accuracy"], "epochs": saved["epochs"],
                "source": f"checkpoint {path.relative_to(data_root())}"}
    else:
        model, history = train_alexnet(prof, d, streams)
        save_alexnet(prof, model, history, d)
        info = {"val_accuracy": history.last["val_accuracy"], "epochs": prof.alexnet_epochs, "source": "trained now"}
    return model.to(env.device()).eval(), info


def _matching_checkpoint(path: Path, d: ImagenetteData, prof: env.Profile) -> dict | None:
    """Lesson 04's saved AlexNet when it exists, is whole, and was trained on these classes at this image
    size; None otherwise (a checkpoint of an older course, another profile or a damaged file: train again)."""
    if not path.exists():
        return None
    try:
        saved = load_checkpoint(path)
    except RuntimeError:
        return None
    needed = {"model", "classes", "image_size", "val_accuracy", "epochs"}
    if not isinstance(saved, dict) or not needed <= set(saved):
        return None
    return saved if saved["classes"] == d.classes and saved["image_size"] == prof.image_size else None


def lenet1_checkpoint_path(prof: env.Profile) -> Path:
    """Where lesson 02 saves, and lesson 06 finds, the trained LeNet-1 of this profile."""
    return data_root() / "checkpoints" / f"lenet1-{prof.name}.pt"


def save_lenet1(prof: env.Profile, model: torch.nn.Module, test_error: float) -> Path:
    """Save lesson 02's LeNet-1 (its weights and test error) atomically; returns the path."""
    path = lenet1_checkpoint_path(prof)
    save_checkpoint(path, {"model": model.state_dict(), "test_error": float(test_error),
                                 "profile": prof.name})
    return path


def load_lenet1(prof: env.Profile) -> tuple[torch.nn.Module, dict]:
    """Lesson 02's LeNet-1 from its checkpoint when there is one for this profile, else the course's
    reference LeNet-1 trained on all of MNIST (:func:`references.load`, ``"lenet1-mnist"``): no training
    here. Returns ``(model in eval mode on the course device, info)`` with info ``{"test_error" (as
    measured when it was saved, on its own test set), "source" (a sentence naming the network)}``."""
    path = lenet1_checkpoint_path(prof)
    if path.exists():
        try:
            saved = load_checkpoint(path)
            model = models.LeNet1()
            model.load_state_dict(saved["model"])
            return model.to(env.device()).eval(), {
                "test_error": saved["test_error"],
                "source": f"your LeNet-1 from lesson 02 (checkpoint {path.name}, profile {prof.name})"}
        except (RuntimeError, KeyError):
            pass    # from another version of the course: use the reference instead
    model, record = references.load_network("lenet1-mnist")
    settings = record["settings"]
    return model.to(env.device()).eval(), {
        "test_error": record["accuracy"]["test_error"],
        "source": (f"the course's reference LeNet-1 (trained on all {record['data']['train']:,} MNIST training "
                   f"digits, {settings['epochs']} epochs; lesson 02 has not saved one in this profile)")}


class TrainedAlexNet(NamedTuple):
    """An AlexNet trained on real photos, for lesson 06: the model (eval mode, course device), its class
    names, the layer Grad-CAM reads (the last convolution's ReLU), the input side it reads, and where
    it came from."""

    model: torch.nn.Module
    classes: list[str]
    cam_layer: str
    size: int
    source: str


def _hub_file(url: str) -> tuple[Path, str]:
    """Where torch's hub cache keeps the file of ``url``: ``(path, the same written from ~)``, the second for
    messages, which name the learner's own home rather than the machine that ran the published notebook."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    return path, str(path).replace(str(Path.home()), "~", 1)


def hash_prefix(url: str) -> str:
    """The SHA-256 prefix in the name of ``url``'s file (torch hub's ``name-<hex>.pth``: at least 8 hex digits).
    Raises ``RuntimeError`` when the name has none: such a file's content could not be checked."""
    found = re.search(r"-([a-f0-9]{8,})\.[^.]+$", Path(url).name)
    if found is None:
        raise RuntimeError(f"{Path(url).name} has no SHA-256 prefix in its name (expected name-<8 or more hex "
                           f"digits>.pth): its content could not be checked, so it is not used.")
    return found.group(1)


# cached files found whole: path -> (size, modification time) when checked, so each is hashed once a session
_CHECKED: dict[Path, tuple[int, int]] = {}


def _download_to_hub(url: str) -> Path:
    """Download ``url`` into torch's hub cache unless it is there; returns its path. Quiet (torch's own
    download announces this machine's cache path) and checked against the hash prefix in the file's name,
    a file already in the cache too; torch writes to a temporary file and moves it in, so a failed download
    leaves nothing behind. Raises ``OSError`` (offline) or ``RuntimeError`` (no hash prefix in the name, or
    a file whose content is not the one named)."""
    import hashlib

    path, where = _hub_file(url)
    prefix = hash_prefix(url)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), prefix, progress=False)
    stat = path.stat()
    if _CHECKED.get(path) != (stat.st_size, stat.st_mtime_ns):
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if not digest.startswith(prefix):
            raise RuntimeError(f"{where} is not the file {url} names (its SHA-256 starts {digest[:len(prefix)]}, "
                               f"expected {prefix}): delete it, and it is downloaded again.")
        _CHECKED[path] = (stat.st_size, stat.st_mtime_ns)
    return path


def alexnet_on_photos(prof: env.Profile, download: bool | None = None) -> tuple[TrainedAlexNet | None, str]:
    """torchvision's ImageNet AlexNet when its weights are in torch's cache (or, with ``download``,
    default: outside the ``smoke`` profile, can be downloaded), else lesson 04's AlexNet from its
    checkpoint. Returns ``(TrainedAlexNet or None, a sentence saying what was found)``."""
    import torchvision

    weights = torchvision.models.AlexNet_Weights.IMAGENET1K_V1
    cached, where = _hub_file(weights.url)
    download = prof.name != "smoke" if download is None else download
    tried = ""
    if cached.exists() or download:
        try:
            _download_to_hub(weights.url)
            model = torchvision.models.alexnet(weights=weights).to(env.device()).eval()
            return (TrainedAlexNet(model, list(weights.meta["categories"]), "features.11", 224,
                                      "torchvision's ImageNet weights"),
                    f"Using torchvision's AlexNet trained on ImageNet (weights {cached.name}).")
        except (OSError, RuntimeError) as err:   # offline, or a broken download
            tried = f"torchvision's ImageNet weights could not be loaded ({type(err).__name__}: {err}). "
    path = checkpoint_path(prof, 2)
    if path.exists():
        saved = load_checkpoint(path)
        model = models.AlexNet(num_classes=len(saved["classes"]), streams=2)
        model.load_state_dict(saved["model"])
        return (TrainedAlexNet(model.to(env.device()).eval(), list(saved["classes"]), "act5",
                                  saved["image_size"], f"lesson 04's checkpoint {path.name}"),
                tried + f"Using lesson 04's AlexNet ({path.name}, validation accuracy "
                        f"{saved['val_accuracy']:.2f}).")
    return None, (tried + f"No trained AlexNet here: torchvision's ImageNet weights are not in {where} "
                  f"and lesson 04 has not saved {path.name}. Run lesson 04 (or, online, a profile other "
                  "than smoke) to see AlexNet's maps; the digits above show every method.")


def imagenet_alexnet(download: bool = True) -> torch.nn.Module:
    """torchvision's AlexNet trained on ImageNet-1k, in eval mode, for comparison.

    It is the later single-stream variant ("one weird trick", 64 conv1 filters; 56.5 % top-1,
    61,100,840 parameters), not the 2012 two-stream net. Downloads 233 MB once into torch's hub cache
    (with ``download=False`` only a file already there is used). Raises ``RuntimeError`` saying where to
    put the file when it is not there and cannot be downloaded.
    """
    from torchvision.models import AlexNet_Weights, alexnet

    weights = AlexNet_Weights.IMAGENET1K_V1
    target, where = _hub_file(weights.url)
    if not download and not target.exists():
        raise RuntimeError(f"torchvision's pretrained AlexNet is not in torch's hub cache ({where}) and was not "
                           f"downloaded: download {weights.url} there to compare, or skip this comparison.")
    try:
        _download_to_hub(weights.url)
        return alexnet(weights=weights).eval()
    except Exception as err:
        raise RuntimeError(
            f"torchvision's pretrained AlexNet could not be downloaded from {weights.url} "
            f"({type(err).__name__}): put that file at {where} by hand, or skip this comparison."
        ) from err

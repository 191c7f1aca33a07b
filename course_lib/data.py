"""Real datasets as uint8 tensors, and a batch loader that keeps them on the training device.

Images are always ``uint8`` tensors of shape ``N x C x H x W`` with ``int64`` labels of shape
``N``. They become floats only inside :class:`TensorLoader`, batch by batch, on the device,
so a whole dataset that fits is moved once and never touched by per-sample Python code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import env

# Mean and std of MNIST's training pixels (in [0, 1]) and of ImageNet's, per channel.
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

DIGITS_TEST_SIZE = 400  # held out of scikit-learn's 1,797 digits, always the same ones


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The dataset cache folder: ``root``, else ``$COURSE_DATA``, else ``data/`` beside the repo.

    The folder is created if needed.
    """
    if root is None:
        root = os.environ.get("COURSE_DATA") or Path(__file__).resolve().parent.parent / "data"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_normalization(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` per channel used when a caller gives none: MNIST's for 1 channel,
    ImageNet's for 3."""
    if channels == 1:
        return MNIST_MEAN, MNIST_STD
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    raise ValueError(f"No default normalization for {channels} channels: expected 1 or 3, or pass mean/std.")


def normalize(images: torch.Tensor, mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None) -> torch.Tensor:
    """uint8 ``N x C x H x W`` (or float in [0, 1]) -> float32 ``(x/255 - mean)/std``, same device."""
    if images.dim() != 4:
        raise ValueError(f"Expected images of shape N x C x H x W, got shape {tuple(images.shape)}.")
    if mean is None or std is None:
        mean, std = default_normalization(images.shape[1])
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


# ----------------------------------------------------------------------------------------------
# MNIST and its offline stand-in


def mnist(split: str = "train", root: str | os.PathLike | None = None,
          download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST through torchvision (its own mirrors and MD5 checks).

    Takes ``split`` ``"train"`` (60,000 images) or ``"test"`` (10,000). Returns
    ``(images uint8 N x 1 x 28 x 28, labels int64 N)``. When the files are missing and cannot be
    downloaded, raises ``RuntimeError`` saying where the files go and naming :func:`digits`, the
    offline fallback.
    """
    from torchvision.datasets import MNIST

    _check_split(split)
    folder = data_root(root)
    try:
        ds = MNIST(str(folder), train=(split == "train"), download=download)
    except Exception as err:  # torchvision raises RuntimeError or URLError depending on the failure
        raise RuntimeError(
            f"MNIST ({split}) is not in {folder / 'MNIST' / 'raw'} and could not be downloaded "
            f"({type(err).__name__}: {err}). Put the four IDX files (train-images-idx3-ubyte.gz, ...) "
            "there by hand, or work offline with course_lib.data.digits() "
            "(set COURSE_PROFILE=smoke to make the lessons use it)."
        ) from err
    images = ds.data.unsqueeze(1).contiguous()  # N x 1 x 28 x 28, uint8
    return images, ds.targets.long()


def digits(split: str = "train", size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's real handwritten 8x8 digits (1,797 images, no download) in MNIST's form.

    Each digit is upscaled to 20x20 and centred in a ``size`` x ``size`` frame, as MNIST digits
    are. The same 400 images always form the ``"test"`` split; the other 1,397 are ``"train"``.
    Returns ``(images uint8 N x 1 x size x size, labels int64 N)``.
    """
    from sklearn.datasets import load_digits

    _check_split(split)
    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # N x 1 x 8 x 8 in [0,1]
    inner = round(size * 20 / 28)
    x = F.interpolate(x, size=(inner, inner), mode="bilinear", align_corners=False)
    pad = size - inner
    x = F.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    labels = torch.from_numpy(bunch.target).long()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    idx = order[:DIGITS_TEST_SIZE] if split == "test" else order[DIGITS_TEST_SIZE:]
    return images[idx].contiguous(), labels[idx].contiguous()


def handwritten_digits(split: str, prof: env.Profile | None = None,
                       root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The digit data a lesson uses in the active profile, cut to the profile's size.

    MNIST for ``cpu`` and ``gpu``, scikit-learn's digits for ``smoke``. Returns
    ``(images uint8 N x 1 x 28 x 28, labels int64 N)``.
    """
    prof = prof or env.profile()
    images, labels = mnist(split, root=root) if prof.dataset == "mnist" else digits(split)
    n = prof.train_size if split == "train" else prof.test_size
    return take(images, labels, n)


def take(images: torch.Tensor, labels: torch.Tensor, n: int | None,
         seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of ``n`` examples (all of them when ``n`` is None or too big)."""
    if n is None or n >= len(labels):
        return images, labels
    idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:n]
    return images[idx], labels[idx]


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"Unknown split {split!r}: expected 'train' or 'test'.")


# ----------------------------------------------------------------------------------------------
# The batch loader


class TensorLoader:
    """Batches from uint8 image tensors that live on the training device.

    Takes ``images`` (uint8 ``N x C x H x W``) and ``labels`` (int64 ``N``); moves them to
    ``device`` once. Each iteration yields ``(x float32 B x C x H x W normalized, y int64 B)``.
    Shuffling uses a seeded generator (``seed + epoch``), so an epoch's order is reproducible
    and a resumed run sees the same batches. ``augment`` is an optional function applied to the
    whole uint8 batch on the device (e.g. random crops and flips), never per sample.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 64, *,
                 shuffle: bool = False, device: torch.device | str | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 seed: int = 0, drop_last: bool = False, channels_last: bool = False,
                 augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None):
        if images.dim() != 4:
            raise ValueError(f"Expected images of shape N x C x H x W, got {tuple(images.shape)}.")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels: expected the same number.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.device = torch.device(device) if device is not None else env.device()
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        if mean is None or std is None:
            mean, std = default_normalization(images.shape[1])
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffling of ``epoch`` (called by ``fit``; resuming sets it too)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.shuffle:
            order = torch.randperm(n, generator=gen).to(self.device)
        else:
            order = None
        for i in range(len(self)):
            if order is None:
                xb = self.images[i * self.batch_size:(i + 1) * self.batch_size]
                yb = self.labels[i * self.batch_size:(i + 1) * self.batch_size]
            else:
                idx = order[i * self.batch_size:(i + 1) * self.batch_size]
                xb, yb = self.images[idx], self.labels[idx]
            if self.augment is not None:
                xb = self.augment(xb, gen)
            x = (xb.float() / 255.0 - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, yb

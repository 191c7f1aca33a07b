"""Batches from uint8 image tensors that stay on the training device, normalized on the fly.

Images are always ``uint8`` tensors of shape ``N x C x H x W`` with ``int64`` labels of shape ``N``.
They become floats only inside :class:`TensorLoader`, batch by batch, on the device, so a whole dataset
that fits is moved once and never touched by per-sample Python code.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch

from . import env
from .checks import whole_number


# Mean and std of MNIST's training pixels (in [0, 1]) and of ImageNet's, per channel.
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def default_normalization(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` per channel used when a caller gives none: MNIST's for 1 channel,
    ImageNet's for 3."""
    if channels == 1:
        return MNIST_MEAN, MNIST_STD
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    raise ValueError(f"No default normalization for {channels} channels: expected 1 or 3, or pass mean/std.")


def check_images(images, what: str = "images", kind: str = "uint8", allow_empty: bool = True) -> None:
    """The one check of an image batch in the course: raise a clear error unless ``images`` is a tensor
    ``N x C x H x W`` of ``kind`` ``"uint8"`` (gray levels 0-255, what the loaders and ``fit`` take) or
    ``"float"`` (normalized, what a model reads). ``allow_empty=False`` refuses ``N = 0``."""
    want = ("uint8 (gray levels 0-255)" if kind == "uint8" else
            "float (normalized, as the model reads it: convert uint8 images with loader.normalize(images))")
    if not torch.is_tensor(images):
        raise TypeError(f"Expected {what} as a torch tensor N x C x H x W of {want}, got {type(images).__name__} "
                        "(convert with torch.from_numpy(array)).")
    if images.dim() != 4:
        raise ValueError(f"Expected {what} of shape N x C x H x W, got shape {tuple(images.shape)}.")
    if kind == "uint8" and images.dtype != torch.uint8:
        raise TypeError(f"Expected {what} as uint8 (gray levels 0-255), got {images.dtype}: the course keeps "
                        "images as bytes and normalizes them itself. Convert floats in [0, 1] with "
                        "(x * 255).round().to(torch.uint8), or give fit a Dataset of ready float tensors.")
    if kind == "float" and not images.is_floating_point():
        raise TypeError(f"Expected {what} as float N x C x H x W (normalized, as the model reads it), got "
                        f"{images.dtype}: convert uint8 images with loader.normalize(images).")
    if not allow_empty and len(images) == 0:
        raise ValueError(f"Expected at least one image in {what}, got an empty batch.")


def _mean_std(channels: int, mean, std) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if (mean is None) != (std is None):
        given, missing = ("mean", "std") if std is None else ("std", "mean")
        raise ValueError(f"{given} was given without {missing}: give both (one value per channel), or neither "
                         "for the default normalization (MNIST's for 1 channel, ImageNet's for 3).")
    if mean is None:
        return default_normalization(channels)
    mean, std = _per_channel(mean, "mean"), _per_channel(std, "std")
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"mean and std need one value per channel ({channels}), got {len(mean)} and {len(std)}.")
    if not all(s > 0 and s == s and s != float("inf") for s in std):
        raise ValueError(f"std must be positive and finite for every channel, got {std}: a std of 0 would "
                         "divide by zero.")
    if not all(m == m and abs(m) != float("inf") for m in mean):
        raise ValueError(f"mean must be a finite number for every channel, got {mean}.")
    return mean, std


def _per_channel(values, name: str) -> tuple[float, ...]:
    """A number or a sequence of numbers (numpy scalars and tensors too) as a tuple of floats."""
    if isinstance(values, (int, float)) or (hasattr(values, "ndim") and values.ndim == 0):
        return (float(values),)
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be one number per channel, got {values!r}.") from None


def scale_and_shift(channels: int, mean=None, std=None, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)``, each ``1 x C x 1 x 1`` float32 on ``device``, such that ``x * scale + shift``
    equals ``(x / 255 - mean) / std`` for uint8 pixels ``x``: the course's one normalization."""
    mean, std = _mean_std(channels, mean, std)
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return 1.0 / (255.0 * s), -m / s


def normalize(images: torch.Tensor, mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None) -> torch.Tensor:
    """uint8 ``N x C x H x W`` -> a new float32 tensor ``(x/255 - mean)/std`` on the same device (the input
    is never modified). ``mean``/``std``: one value per channel (both or neither), default MNIST's
    (1 channel) or ImageNet's (3). Raises a clear error for another dtype or shape, or a std that is not
    positive."""
    check_images(images)
    scale, shift = scale_and_shift(images.shape[1], mean, std, images.device)
    return images.float().mul_(scale).add_(shift)


def take(images: torch.Tensor, labels: torch.Tensor, n: int | None,
         seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of ``n`` examples (all of them when ``n`` is None or too big)."""
    if n is not None:
        n = whole_number(n, "n", low=0, expected="a whole number of examples >= 0 (or None for all of them)")
    if n is None or n >= len(labels):
        return images, labels
    idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:n]
    return images[idx], labels[idx]


def _generator(device: torch.device, seed: int) -> torch.Generator:
    """A seeded generator on ``device`` when it has one (random numbers drawn there need no copy
    from the host, which would stall a GPU every batch), else on the CPU."""
    try:
        return torch.Generator(device=device).manual_seed(seed)
    except RuntimeError:
        return torch.Generator().manual_seed(seed)


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
        check_images(images)
        if not torch.is_tensor(labels) or labels.dim() != 1 or labels.is_floating_point():
            raise ValueError("Expected labels as a 1-D integer tensor (one class index per image), got "
                             f"{type(labels).__name__} {tuple(getattr(labels, 'shape', ()))}.")
        if len(images) == 0:
            raise ValueError("No images: the data set is empty (check the split or the subset size).")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels: expected the same number.")
        batch_size = whole_number(batch_size, "batch_size")
        self.device = env.resolve_device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.long)     # int32 or uint8 labels: cross-entropy takes int64
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        # (x / 255 - mean) / std as one multiply and one add, done in place on the batch
        self._scale, self._shift = scale_and_shift(images.shape[1], mean, std, self.device)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffling of ``epoch`` (called by ``fit``; resuming sets it too)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        gen = _generator(self.device, self.seed + self.epoch)
        order = torch.randperm(n, generator=gen, device=gen.device).to(self.device) if self.shuffle else None
        for i in range(len(self)):
            if order is None:
                xb = self.images[i * self.batch_size:(i + 1) * self.batch_size]
                yb = self.labels[i * self.batch_size:(i + 1) * self.batch_size]
            else:
                idx = order[i * self.batch_size:(i + 1) * self.batch_size]
                # index_select copies whole images; it is ~10x faster than images[idx] on a CPU
                xb, yb = self.images.index_select(0, idx), self.labels.index_select(0, idx)
            if self.augment is not None:
                xb = self.augment(xb, gen)
            x = xb.float().mul_(self._scale).add_(self._shift)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, yb


def batches_for(data, batch_size: int, *, shuffle: bool, device: torch.device, mean=None, std=None, seed: int = 0,
                channels_last: bool = False, augment=None):
    """Batches of ``data`` for training or measuring: an ``(images uint8 N x C x H x W, labels N)`` tensor pair
    becomes a :class:`TensorLoader` (normalized, augmented and on ``device``), a Dataset a DataLoader (its
    items are used as they are: ``mean``, ``std`` and ``augment`` are refused). Anything else: TypeError."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and torch.is_tensor(data[0]):
        images, labels = data
        return TensorLoader(images, labels, batch_size, shuffle=shuffle, device=device,
                           mean=mean, std=std, seed=seed, channels_last=channels_last, augment=augment)
    if isinstance(data, torch.utils.data.Dataset):
        given = [name for name, value in (("augment", augment), ("mean", mean), ("std", std)) if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to an (images, labels) pair of uint8 tensors; a Dataset "
                             "yields ready float tensors, so normalize and augment inside it (or pass tensors).")
        gen = torch.Generator().manual_seed(seed)
        return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=gen)
    raise TypeError(
        f"Expected data as an (images, labels) pair of tensors or a torch Dataset, got {type(data).__name__}."
    )

"""Batch augmentation on the device: AlexNet's random crops and mirror images, and the centre crop it
is tested on. Whole uint8 batches at once, never per sample.
"""

from __future__ import annotations

import torch

from .checks import whole_number


def random_crop_flip(batch: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
    """AlexNet's own augmentation (2012): a random ``size x size`` crop of each image (the paper took
    224 x 224 patches of 256 x 256 images) and a horizontal flip half the time.

    Takes uint8 ``B x C x H x W`` with H, W >= ``size``; returns uint8 ``B x C x size x size``. One
    ``index_select`` of rows and one ``gather`` of columns on the bytes: no interpolation and no
    per-image Python work.
    """
    b, c, h, w = batch.shape
    return crop_at(batch, *crop_positions(b, h, w, size, generator), size)


def crop_positions(b: int, h: int, w: int, size: int, generator: torch.Generator):
    """Random crops for ``b`` images of ``h x w``: ``(top B x 1, left B x 1, flip B x 1 bool)`` on the
    generator's device, drawn in a fixed order (so that a slice of them is what a slice of the batch
    would get: the distributed run crops each rank's share as one process would)."""
    _check_size(size)
    if size > min(h, w):
        raise ValueError(f"Cannot crop {size}x{size} out of {h}x{w} images: cache them larger "
                         f"(e.g. {round(size * 8 / 7)}).")
    dev = generator.device
    y0 = torch.randint(0, h - size + 1, (b, 1), generator=generator, device=dev)
    x0 = torch.randint(0, w - size + 1, (b, 1), generator=generator, device=dev)
    flip = torch.rand(b, 1, generator=generator, device=dev) < 0.5
    return y0, x0, flip


def crop_at(batch: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor, flip: torch.Tensor, size: int) -> torch.Tensor:
    """Cut ``size x size`` crops of uint8 ``B x C x H x W`` at ``(y0, x0)`` (each ``B x 1``), mirrored where
    ``flip``. Returns uint8 ``B x C x size x size``."""
    b, c, h, w = batch.shape
    steps = torch.arange(size, device=y0.device)
    rows = (y0 + steps).to(batch.device)                                     # B x size
    cols = (x0 + torch.where(flip, size - 1 - steps, steps)).to(batch.device)  # B x size
    # whole rows first (index_select on a (B*C*H) x W view: fast contiguous copies), then the columns
    planes = torch.arange(b * c, device=batch.device).view(b, c, 1) * h
    picked = batch.contiguous().view(-1, w).index_select(0, (planes + rows[:, None, :]).reshape(-1))
    return picked.view(b, c, size, w).gather(3, cols[:, None, None, :].expand(b, c, size, size))


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size x size`` square of ``N x C x H x W`` images (how AlexNet-style training
    evaluates: train on random crops, test on the center)."""
    _check_size(size)
    h, w = images.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"Cannot crop {size}x{size} out of {h}x{w} images.")
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top:top + size, left:left + size]


def _check_size(size) -> None:
    whole_number(size, "A crop size", expected="a whole number of pixels >= 1")


def crop_flip(size: int):
    """``random_crop_flip`` at ``size``, as an ``augment`` function for :class:`TensorLoader` and ``fit``."""
    _check_size(size)
    return lambda batch, generator: random_crop_flip(batch, generator, size)


def random_shift(batch: torch.Tensor, generator: torch.Generator, max_shift: int) -> torch.Tensor:
    """Each image of uint8 ``B x C x S x S`` moved by its own random whole number of pixels, from
    ``-max_shift`` to ``max_shift`` in each direction, the uncovered border filled with 0 (MNIST's
    background). Returns uint8 ``B x C x S x S``: a crop of the zero-padded batch, no per-image work."""
    b, c, h, w = batch.shape
    if h != w:
        raise ValueError(f"random_shift takes square images, got {h}x{w}.")
    padded = torch.nn.functional.pad(batch, (max_shift,) * 4)
    dev = generator.device
    y0 = torch.randint(0, 2 * max_shift + 1, (b, 1), generator=generator, device=dev)
    x0 = torch.randint(0, 2 * max_shift + 1, (b, 1), generator=generator, device=dev)
    return crop_at(padded, y0, x0, torch.zeros_like(y0, dtype=torch.bool), h)


def shifts(max_shift: int):
    """``random_shift`` by up to ``max_shift`` pixels, as an ``augment`` function for ``fit``."""
    max_shift = whole_number(max_shift, "max_shift", low=0, expected="a whole number of pixels >= 0")
    return lambda batch, generator: random_shift(batch, generator, max_shift)


def shift(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """``N x C x H x W`` images moved ``dx`` pixels right and ``dy`` down (negative: left, up), the
    uncovered border filled with 0 (MNIST's background). A new tensor of the same dtype and shape."""
    if images.dim() != 4:
        raise ValueError(f"Expected images N x C x H x W, got shape {tuple(images.shape)}.")
    h, w = images.shape[-2:]
    out = torch.zeros_like(images)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[..., max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out

"""Batch augmentation on the device: AlexNet's random crops and mirror images, and the centre crop it
is tested on. Whole uint8 batches at once, never per sample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

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


def random_resized_crop_flip(batch: torch.Tensor, generator: torch.Generator, size: int,
                             scale: tuple[float, float] = (0.35, 1.0),
                             ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Scale augmentation (Szegedy et al. 2014's random-sized crops; fast.ai's Imagenette runs use ``scale``
    0.35-1): from each image a random rectangle covering ``scale`` of its area with aspect ``ratio``, resized
    to ``size x size`` (bilinear), and mirrored half the time. A small training set then shows a network
    each object at many sizes, which plain crops (:func:`random_crop_flip`) do not.

    Takes uint8 ``B x C x H x W``; returns uint8 ``B x C x size x size``. One ``affine_grid`` and one
    ``grid_sample`` for the whole batch: no per-image Python work. The random numbers come from
    ``generator`` in a fixed order.
    """
    _check_size(size)
    b, c, h, w = batch.shape
    dev = generator.device
    area = torch.empty(b, device=dev).uniform_(scale[0], scale[1], generator=generator)
    log_ratio = torch.empty(b, device=dev).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    aspect = log_ratio.exp()
    # the rectangle's width and height as fractions of the image's (at most the whole image)
    width, height = (area * aspect).sqrt().clamp(max=1.0), (area / aspect).sqrt().clamp(max=1.0)
    # centres in affine_grid's coordinates (-1..1), so that the rectangle stays inside the image
    cx = (torch.rand(b, generator=generator, device=dev) * 2 - 1) * (1 - width)
    cy = (torch.rand(b, generator=generator, device=dev) * 2 - 1) * (1 - height)
    flip = torch.where(torch.rand(b, generator=generator, device=dev) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = width * flip, cx, height, cy
    grid = F.affine_grid(theta.to(batch.device), [b, c, size, size], align_corners=False)
    out = F.grid_sample(batch.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def resized_crop_flip(size: int, scale: tuple[float, float] = (0.35, 1.0)):
    """``random_resized_crop_flip`` at ``size``, as an ``augment`` function for :class:`TensorLoader` and ``fit``."""
    _check_size(size)
    if not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"scale must be (low, high) with 0 < low <= high <= 1 (fractions of the image's area), "
                         f"got {scale!r}.")
    return lambda batch, generator: random_resized_crop_flip(batch, generator, size, scale)


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

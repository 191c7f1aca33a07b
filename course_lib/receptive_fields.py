"""How much of the input one unit sees: its receptive field computed from the layer sizes
(:func:`receptive_field`), measured with gradients (:func:`measured_field`), and the real image patches
that excite a unit most (:func:`top_patches`).

For LeNet-1 the input first goes through :class:`models.DigitFrame`, which shrinks MNIST's 20 x 20 box
to 16 x 16 pixels: a unit's field is then given in the 28 x 28 input's pixels, 1.25 of them per frame
pixel, so its size, stride and offset are fractions.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import SPATIAL_LAYERS, device_of, evaluating, find_layer, layer_names
from .models import DigitFrame, SparseConv2d, SplitConv2d, Subsample

# A gradient this much smaller than the largest one is a floating-point leftover, not a path: LeNet-1's
# frame adds and subtracts the image's background level, whose gradients cancel up to rounding.
LEFTOVER = 1e-5


def _geometry(m: nn.Module) -> tuple[int, int, int] | None:
    """``(kernel, stride, padding)`` of a spatial layer, None for any other."""
    pair = lambda v: v if isinstance(v, int) else v[0]
    if isinstance(m, (nn.Conv2d, SplitConv2d)):
        return (pair(m.kernel_size) - 1) * pair(m.dilation) + 1, pair(m.stride), pair(m.padding)
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        return pair(m.kernel_size), pair(m.stride), pair(m.padding)
    if isinstance(m, SparseConv2d):
        return m.kernel_size, 1, 0
    if isinstance(m, Subsample):
        return 2, 2, 0
    return None


def receptive_field(model: nn.Module, layer: str) -> tuple[float, float, float]:
    """The receptive field of one unit of ``layer``: ``(size, stride, offset)`` in input pixels.

    Unit ``(i, j)`` of the layer's output sees the input square whose rows (and columns) run from
    ``offset + i * stride`` to ``offset + i * stride + size`` (exclusive; parts may fall in the padding).
    Walks the model's convolutions and poolings in definition order up to ``layer``, so it suits models
    that run their layers in that order (LeNet-1, LeNet-5, AlexNet up to conv5). E.g. AlexNet's conv5
    units see 163 x 163 pixels, 16 apart (whole numbers); LeNet-1's conv1 units see 5 x 5 pixels of its
    16 x 16 digit, which are 6.25 x 6.25 pixels of the 28 x 28 input (:class:`models.DigitFrame`).
    """
    find_layer(model, layer)
    size, stride, offset = 1, 1, 0
    frame = None
    for name, m in model.named_modules():
        if ".halves." in name:     # a layer split over two devices counts once, not again for its halves
            continue
        if isinstance(m, (nn.Linear, nn.Flatten)):
            raise ValueError(f"{layer!r} comes after {name!r}: a unit there sees the whole image.")
        if isinstance(m, DigitFrame):
            frame = m
        geometry = _geometry(m)
        if geometry is not None:
            k, s, p = geometry
            offset -= p * stride
            size += (k - 1) * stride
            stride *= s
        if name == layer:
            break
    if frame is None:
        return size, stride, offset
    ratio = frame.box / frame.inner                          # input pixels per frame pixel (20 / 16)
    side = 28                                                # MNIST's frame
    box_start, before = (side - frame.box) // 2, (side - frame.inner) // 2
    return size * ratio, stride * ratio, box_start + (offset - before) * ratio


def field_box(model: nn.Module, layer: str, row: int, col: int) -> tuple[int, int, int, int]:
    """The input pixels unit ``(row, col)`` of ``layer`` can see, as whole pixels: ``(top, left, bottom,
    right)``, inclusive (a fractional field of LeNet-1 rounded outwards; it may reach past the image)."""
    size, stride, offset = receptive_field(model, layer)
    top, left = offset + row * stride, offset + col * stride
    return (math.floor(top + 1e-9), math.floor(left + 1e-9), math.ceil(top + size - 1e-9) - 1,
            math.ceil(left + size - 1e-9) - 1)


def spatial_layer_names(model: nn.Module) -> list[str]:
    """The model's convolutions and poolings before its first linear layer: those with a receptive field."""
    names = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Flatten)):
            break
        if isinstance(m, SPATIAL_LAYERS) and ".halves." not in name:
            names.append(name)
    return names


def top_patches(activations: torch.Tensor, images: torch.Tensor, channel: int, k: int,
                field: tuple[int, int, int]) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """The ``k`` image regions that excite ``channel`` most: what one unit "looks for".

    Takes ``activations`` ``N x C x h x w`` of a layer on ``images`` ``N x C_img x H x W`` and that
    layer's ``field`` = :func:`receptive_field` (whole pixels: a network without LeNet-1's frame). Finds the
    ``k`` largest values of the channel over every image and position and cuts each unit's receptive field
    out of its image (zero where it falls outside). Returns ``(patches k x C_img x size x size, [(image, row,
    col), ...])``, largest first.
    """
    if activations.dim() != 4 or not 0 <= channel < activations.shape[1]:
        raise ValueError(f"Expected activations N x C x h x w and a channel in 0..C-1, got "
                         f"{tuple(activations.shape)} and channel {channel}.")
    if any(float(v) != int(v) for v in field):
        raise ValueError(f"top_patches needs a field of whole pixels, got {field} (a network with LeNet-1's frame).")
    size, stride, offset = (int(v) for v in field)
    a = activations[:, channel]
    h, w = a.shape[-2:]
    best = a.flatten().topk(min(k, a.numel())).indices
    where = [(int(i) // (h * w), int(i) % (h * w) // w, int(i) % w) for i in best]
    pad = max(0, -offset, size)
    padded = F.pad(images, (pad, pad, pad, pad))
    patches = [padded[n, :, pad + offset + r * stride: pad + offset + r * stride + size,
                      pad + offset + c * stride: pad + offset + c * stride + size] for n, r, c in where]
    return torch.stack(patches), where


def measured_field(model: nn.Module, layer: str, images: torch.Tensor, row: int, col: int,
                   channel: int | None = None) -> torch.Tensor:
    """The input pixels that the units at ``(row, col)`` of ``layer`` actually depend on, measured:
    the pixels where the gradient of their sum (over every channel, or only ``channel``) is non-zero
    for at least one of ``images`` (float ``N x C x H x W``; several random images reach the paths that
    max pooling and ReLU close for one image). A gradient below :data:`LEFTOVER` of the largest counts as
    zero (rounding, not a path). Returns a bool ``H x W`` mask; compare its bounding box with
    :func:`field_box`."""
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"Expected float images N x C x H x W, got {images.dtype} {tuple(images.shape)}.")
    module = find_layer(model, layer)
    grabbed = {}
    handle = module.register_forward_hook(lambda m, i, o: grabbed.__setitem__("out", o))
    with evaluating(model):
        try:
            x = images.detach().to(device_of(model)).clone().requires_grad_(True)
            model(x)
            out = grabbed["out"]
            if out.dim() != 4 or not (0 <= row < out.shape[2] and 0 <= col < out.shape[3]):
                raise ValueError(f"{layer!r} gives {tuple(out.shape[1:])}: expected a unit (row, col) inside "
                                 f"its {out.shape[-2:] if out.dim() == 4 else 'spatial'} maps, got ({row}, {col}).")
            picked = out[:, :, row, col] if channel is None else out[:, channel, row, col]
            # autograd.grad, not backward(): the caller's parameters get no .grad from a measurement
            (grad,) = torch.autograd.grad(picked.sum(), x)
        finally:
            handle.remove()
    size = grad.abs().amax(1).amax(0)
    return (size > LEFTOVER * size.max().clamp_min(1e-30)).cpu()


__all__ = ["LEFTOVER", "field_box", "layer_names", "measured_field", "receptive_field", "spatial_layer_names",
           "top_patches"]

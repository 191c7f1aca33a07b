"""The pieces the course's networks are built from, and the checks of what they are given: LeNet-1's input
step (:class:`DigitFrame`), its subsampling (:class:`Subsample`) and sparse connection table
(:class:`SparseConv2d`, :data:`LENET1_TABLE`); :func:`check_input`, :func:`check_classes` and
:func:`count_parameters`.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import is_whole


def check_input(x: torch.Tensor, channels: int, min_size: int, model: str,
                exact_size: int | None = None, dtype: torch.dtype | None = None) -> None:
    """Raise ``ValueError`` unless ``x`` is ``N x channels x H x W`` with H, W >= ``min_size``
    (or exactly ``exact_size``). The message names the model and what it expected."""
    want = f"N x {channels} x {exact_size or 'H'} x {exact_size or 'W'}"
    if not torch.is_tensor(x):
        raise TypeError(f"{model} expects a torch tensor of images {want}, got {type(x).__name__} "
                        "(convert with torch.from_numpy, then normalize).")
    if not x.is_floating_point():
        raise TypeError(f"{model} expects normalized float images, got {x.dtype}: pass uint8 images through "
                        "course_lib.loader.normalize(images) first (fit, evaluate and predict do it for you).")
    if dtype is not None and x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"{model} has {dtype} weights but got {x.dtype} images: convert with x.to({dtype}).")
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{model} expects images of shape {want}, got {tuple(x.shape)}.")
    h, w = x.shape[-2:]
    if exact_size is not None and (h, w) != (exact_size, exact_size):
        raise ValueError(f"{model} expects images of shape {want}, got {tuple(x.shape)}.")
    if h < min_size or w < min_size:
        raise ValueError(f"{model} needs images of at least {min_size}x{min_size}, got {h}x{w}.")


def check_classes(num_classes, model: str) -> int:
    """``num_classes`` as an int >= 2, else a ValueError naming the model."""
    if not is_whole(num_classes) or num_classes < 2:
        raise ValueError(f"{model} needs num_classes as a whole number >= 2, got {num_classes!r}.")
    return int(num_classes)


class DigitFrame(nn.Module):
    """LeNet-1's input step: MNIST's ``N x 1 x 28 x 28`` digits as 16x16 digits centred in 28x28.

    The 1998 paper (section III.C.7): "In LeNet-1, images were down-sampled to 16x16 pixels and
    centered in the 28x28 input layer." MNIST draws each digit inside a 20x20 box in the middle of its
    28x28 frame, so this crops that box, shrinks it to ``inner`` x ``inner`` (area averaging) and pads
    it back to 28x28 with each image's background (its smallest value). No parameters.
    """

    def __init__(self, inner: int = 16, box: int = 20):
        super().__init__()
        self.inner, self.box = inner, box

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1]
        start = (size - self.box) // 2
        digit = x[..., start:start + self.box, start:start + self.box]
        digit = F.interpolate(digit, size=(self.inner, self.inner), mode="area")
        background = x.amin(dim=(1, 2, 3), keepdim=True)
        before = (size - self.inner) // 2
        after = size - self.inner - before
        return F.pad(digit - background, (before, after, before, after)) + background


class Subsample(nn.Module):
    """LeNet's subsampling layer: the 2x2 average of each map, times a trainable coefficient, plus a
    trainable bias (one pair per map), through tanh (or ``squash``, e.g. ``torch.relu``).
    ``N x C x H x W`` -> ``N x C x H/2 x W/2``; 2C parameters. (The 1998 paper describes its S2 and S4
    layers so; LeNet-1's H2 and H4 count the same 2 parameters per map.)"""

    def __init__(self, channels: int, squash=torch.tanh):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.squash = squash

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(x, 2)
        return self.squash(x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1))


# LeNet-1's H2 -> H3 connection table: which of the 4 H2 maps each of the 12 H3 maps reads.
# The 1989 paper says each H3 unit sees "one or two" 5x5 neighbourhoods in H2 and that the choice
# "will not be described here"; its count of 2,578 free parameters fixes 20 connections. This table
# is our choice that fits those counts: 4 maps read one H2 map, 8 maps read two (every pair once, and
# two pairs twice), so that each H2 map feeds exactly 5 H3 maps.
LENET1_TABLE = ((0,), (1,), (2,), (3,), (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3), (0, 1), (2, 3))


class SparseConv2d(nn.Module):
    """A convolution in which output map ``o`` reads only the input maps ``table[o]``.

    Holds one ``k x k`` kernel per connection (``kernels``: ``connections x k x k``) and one bias per
    output map: ``sum(len(t) for t in table) * k * k + len(table)`` parameters. ``weight`` is the
    equivalent dense ``C_out x C_in x k x k`` tensor (zeros where there is no connection), so that the
    filter pictures and measures of ordinary convolutions work on it. ``N x C_in x H x W`` ->
    ``N x C_out x (H-k+1) x (W-k+1)``.
    """

    def __init__(self, in_channels: int, table: Sequence[Sequence[int]], kernel_size: int):
        super().__init__()
        pairs = [(o, i) for o, inputs in enumerate(table) for i in inputs]
        if any(not 0 <= i < in_channels for _, i in pairs):
            raise ValueError(f"The connection table names input maps outside 0..{in_channels - 1}: {table}.")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, len(table), kernel_size
        self.table = tuple(tuple(t) for t in table)
        self.register_buffer("outputs", torch.tensor([o for o, _ in pairs]), persistent=False)
        self.register_buffer("inputs", torch.tensor([i for _, i in pairs]), persistent=False)
        fan_in = kernel_size * kernel_size * torch.tensor([len(t) for t in table], dtype=torch.float32)
        bound = (1.0 / fan_in).sqrt()  # PyTorch's Conv2d default, per output map's own fan-in
        self.kernels = nn.Parameter((torch.rand(len(pairs), kernel_size, kernel_size) * 2 - 1)
                                    * bound[self.outputs].view(-1, 1, 1))
        self.bias = nn.Parameter((torch.rand(len(table)) * 2 - 1) * bound)

    @property
    def weight(self) -> torch.Tensor:
        """The dense ``C_out x C_in x k x k`` kernel: each connection's kernel in its place, zeros elsewhere."""
        k = self.kernel_size
        dense = self.kernels.new_zeros(self.out_channels, self.in_channels, k, k)
        return dense.index_put((self.outputs, self.inputs), self.kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"connections={len(self.inputs)}")




def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

"""The course's networks: LeNet-1 (1989/1993), LeNet-5 (1998) and AlexNet (2012).

Layers have plain names (``conv1``, ``act1``, ``pool1``, ...) so that lessons can ask for
them by name when recording activations or showing filters.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def check_input(x: torch.Tensor, channels: int, min_size: int, model: str,
                exact_size: int | None = None) -> None:
    """Raise ``ValueError`` unless ``x`` is ``N x channels x H x W`` with H, W >= ``min_size``
    (or exactly ``exact_size``). The message names the model and what it expected."""
    want = f"N x {channels} x {exact_size or 'H'} x {exact_size or 'W'}"
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{model} expects images of shape {want}, got {tuple(x.shape)}.")
    h, w = x.shape[-2:]
    if exact_size is not None and (h, w) != (exact_size, exact_size):
        raise ValueError(f"{model} expects images of shape {want}, got {tuple(x.shape)}.")
    if h < min_size or w < min_size:
        raise ValueError(f"{model} needs images of at least {min_size}x{min_size}, got {h}x{w}.")


class LeNet1(nn.Module):
    """LeNet-1 (LeCun et al. 1989; the 1998 paper's table: 1.7% test error on MNIST).

    28x28 input -> 5x5 conv to 4 maps (24x24) -> tanh -> 2x2 average pooling (12x12)
    -> 5x5 conv to 12 maps (8x8) -> tanh -> 2x2 average pooling (4x4) -> 192 -> 10 logits.
    Every one of the 12 maps sees all 4 maps below it: 3,246 parameters.
    Input ``N x 1 x 28 x 28`` float, output ``N x 10`` logits.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, kernel_size=5)
        self.act1 = nn.Tanh()
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(4, 12, kernel_size=5)
        self.act2 = nn.Tanh()
        self.pool2 = nn.AvgPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(12 * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, 1, 28, "LeNet1", exact_size=28)
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        return self.fc(self.flatten(x))


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998) for 28x28 digits (conv1 pads by 2 to see the 32x32 frame).

    conv1 5x5 -> 6 maps, pool, conv2 5x5 -> 16 maps, pool, fc 400 -> 120 -> 84 -> 10.
    ``activation`` is ``"tanh"`` (the original) or ``"relu"`` (lesson 03: ReLU units can die);
    ``pool`` is ``"avg"`` or ``"max"``. Input ``N x 1 x 28 x 28``, output ``N x 10`` logits.
    """

    def __init__(self, num_classes: int = 10, activation: str = "tanh", pool: str = "avg"):
        super().__init__()
        acts = {"tanh": nn.Tanh, "relu": nn.ReLU}
        pools = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}
        if activation not in acts:
            raise ValueError(f"activation must be one of {sorted(acts)}, got {activation!r}.")
        if pool not in pools:
            raise ValueError(f"pool must be one of {sorted(pools)}, got {pool!r}.")
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.act1 = acts[activation]()
        self.pool1 = pools[pool](2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.act2 = acts[activation]()
        self.pool2 = pools[pool](2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.act3 = acts[activation]()
        self.fc2 = nn.Linear(120, 84)
        self.act4 = acts[activation]()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, 1, 28, "LeNet5", exact_size=28)
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        x = self.act3(self.fc1(self.flatten(x)))
        x = self.act4(self.fc2(x))
        return self.fc3(x)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

"""LeNet-1 (1989) as published and its fully connected simplification, and LeNet-5 (1998), with plain layer
names (``conv1``, ``act1``, ``pool1``, ...) so that lessons can ask for them by name."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..checks import whole_number
from .parts import LENET1_TABLE, DigitFrame, SparseConv2d, Subsample, check_classes, check_input


class LeNet1(nn.Module):
    """LeNet-1 as published (LeCun et al., NIPS 1989, "Handwritten digit recognition with a
    back-propagation network"; 1.7 % test error on MNIST in the 1998 paper's table).

    frame: the 28x28 digit shrunk to 16x16 and centred in 28x28 (:class:`DigitFrame`);
    conv1 (H1): 4 maps of 5x5 -> 4 x 24 x 24, tanh; pool1 (H2): subsampling -> 4 x 12 x 12;
    conv2 (H3): 12 maps of 5x5, each reading one or two H2 maps (:data:`LENET1_TABLE`, 20 connections)
    -> 12 x 8 x 8, tanh; pool2 (H4): subsampling -> 12 x 4 x 4; fc: 192 -> 10.
    Parameters: 104 + 8 + 512 + 24 + 1,930 = 2,578, the paper's count. Input ``N x 1 x 28 x 28``
    float (normalized MNIST), output ``N x num_classes`` logits. (The paper's output units were
    squashed and trained on squared error; here the 10 outputs are logits for cross-entropy.)

    One modern change at a time ("what thirty years bought", lesson 02): ``activation="relu"`` puts
    ReLU wherever the published net squashes with tanh (after each convolution and in the subsampling);
    ``pool="max"`` replaces the trainable subsampling by 2x2 max-pooling; ``width=k`` has ``k`` times the
    maps in both layers (conv2 keeps the connection table within each group of 4 maps).
    """

    def __init__(self, num_classes: int = 10, activation: str = "tanh", pool: str = "subsample", width: int = 1):
        super().__init__()
        num_classes = check_classes(num_classes, "LeNet1")
        acts = {"tanh": (nn.Tanh, torch.tanh), "relu": (nn.ReLU, torch.relu)}
        if activation not in acts:
            raise ValueError(f"activation must be one of {sorted(acts)}, got {activation!r}.")
        if pool not in ("subsample", "max"):
            raise ValueError(f"pool must be 'subsample' or 'max', got {pool!r}.")
        width = whole_number(width, "width")
        act, squash = acts[activation]
        pooling = (lambda c: Subsample(c, squash)) if pool == "subsample" else (lambda c: nn.MaxPool2d(2))
        table = [tuple(i + 4 * g for i in t) for g in range(width) for t in LENET1_TABLE]
        self.frame = DigitFrame()
        self.conv1 = nn.Conv2d(1, 4 * width, kernel_size=5)
        self.act1 = act()
        self.pool1 = pooling(4 * width)
        self.conv2 = SparseConv2d(4 * width, table, kernel_size=5)
        self.act2 = act()
        self.pool2 = pooling(12 * width)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(12 * width * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, 1, 28, "LeNet1", exact_size=28, dtype=self.conv1.weight.dtype)
        x = self.pool1(self.act1(self.conv1(self.frame(x))))
        x = self.pool2(self.act2(self.conv2(x)))
        return self.fc(self.flatten(x))


class LeNet1Simplified(nn.Module):
    """LeNet-1's common simplification: the digit at MNIST's own size, conv2 connected to all 4 maps,
    plain 2x2 average pooling. 28x28 -> conv1 4 maps (24x24) -> tanh -> avg pool (12x12) -> conv2
    12 maps (8x8) -> tanh -> avg pool (4x4) -> 192 -> 10: 3,246 parameters.
    Input ``N x 1 x 28 x 28`` float, output ``N x num_classes`` logits.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        num_classes = check_classes(num_classes, "LeNet1Simplified")
        self.conv1 = nn.Conv2d(1, 4, kernel_size=5)
        self.act1 = nn.Tanh()
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(4, 12, kernel_size=5)
        self.act2 = nn.Tanh()
        self.pool2 = nn.AvgPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(12 * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, 1, 28, "LeNet1Simplified", exact_size=28, dtype=self.conv1.weight.dtype)
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
        num_classes = check_classes(num_classes, "LeNet5")
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
        check_input(x, 1, 28, "LeNet5", exact_size=28, dtype=self.conv1.weight.dtype)
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        x = self.act3(self.fc1(self.flatten(x)))
        x = self.act4(self.fc2(x))
        return self.fc3(x)

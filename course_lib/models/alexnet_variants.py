"""Lesson 09's networks: AlexNet's layers with the changes of the decade after it, each one switchable, so
that one change at a time can be measured against AlexNet itself.

* no LRN — local response normalization, which VGG (Simonyan & Zisserman 2015) found did not help;
* batch norm — a normalization after every convolution, learned and computed over the batch (Ioffe &
  Szegedy 2015), here in place of LRN;
* 3x3 stacks — conv1's 11 x 11 and conv2's 5 x 5 filters replaced by stacks of 3 x 3 ones covering the same
  ground (VGG);
* global average pooling — the fully connected head replaced by the average of each of conv5's maps and one
  linear layer (Lin et al.'s Network in Network, 2014; GoogLeNet);
* residual block — conv4 adds its input to its output (He et al. 2016).

``init="2012"`` starts a variant as the 2012 paper did (every weight from N(0, 0.01), biases of 1 in conv2,
conv4, conv5 and the hidden fully connected layers), so that what He et al.'s initialization buys is measured
too. Local response normalization is :class:`BandLocalResponseNorm` (``models/alexnet.py``, AlexNet's own): the
same numbers as ``nn.LocalResponseNorm``, faster on a CPU (``benchmarks/band_lrn.py``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..loader import IMAGENET_STD
from .alexnet import AlexNet, BandLocalResponseNorm
from .parts import check_classes, check_input

# change name -> AlexNetVariant's keyword arguments for it (lesson 09's table, one change at a time)
ARCHITECTURE_CHANGES = {
    "no LRN": {"lrn": False},
    "batch norm instead of LRN": {"lrn": False, "batch_norm": True},
    "3x3 stacks instead of 11x11 and 5x5": {"small_kernels": True},
    "global average pooling instead of fc6-fc8": {"gap": True},
    "a residual block (conv4)": {"residual": True},
}
ALL_CHANGES = {"lrn": False, "batch_norm": True, "small_kernels": True, "gap": True, "residual": True}


INITS = ("he", "2012")


def _conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2)


def _stack(c_in: int, c_out: int, strides: tuple[int, ...], batch_norm: bool) -> nn.Sequential:
    """3 x 3 convolutions, one per stride, ReLU between them (after a batch norm when asked); the last has
    no ReLU of its own (the variant adds it, as after any conv). Widths go from c_in to c_out at the first."""
    layers, c = [], c_in
    for i, s in enumerate(strides):
        layers.append(_conv(c, c_out, 3, s))
        c = c_out
        if i < len(strides) - 1:
            layers += [nn.BatchNorm2d(c_out)] if batch_norm else []
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class AlexNetVariant(nn.Module):
    """AlexNet's five convolutions, pooling and head at lesson 09's sizes, with the decade's changes.

    ``AlexNetVariant(num_classes=10, image_size=64, width=0.5, lrn=True, batch_norm=False,
    small_kernels=False, gap=False, residual=False, dropout=0.5, init="he")``: ``width`` scales every layer's maps
    (1.0: AlexNet's 96, 256, 384, 384, 256) and the fully connected layers (4096 at 1.0); the head reads
    pool5's maps as they are at ``image_size`` (1 x 1 at 64 px, 3 x 3 at 128 px: no repetition up to 6 x 6).
    Without any change it is the single-stream AlexNet: conv1 11x11/4, LRN, overlapping max pooling, conv2
    5x5, LRN, pooling, conv3-conv5 3x3, pooling, fc6 and fc7 with dropout, fc8. Layers are named as in
    :class:`AlexNet` (``conv1``, ``bn1``, ``act1``, ``norm1``, ``pool1``, ...); a change that is off leaves
    an ``Identity``. ``init``: ``"he"`` (:meth:`reset_parameters`) or ``"2012"`` (:meth:`init_2012`). Input
    ``N x 3 x S x S``, output ``N x num_classes`` logits.
    """

    def __init__(self, num_classes: int = 10, image_size: int = 64, width: float = 0.5, lrn: bool = True,
                 batch_norm: bool = False, small_kernels: bool = False, gap: bool = False, residual: bool = False,
                 dropout: float = 0.5, init: str = "he"):
        super().__init__()
        num_classes = check_classes(num_classes, "AlexNetVariant")
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(repr(i) for i in INITS)}, got {init!r}.")
        if not 0 < width <= 4:
            raise ValueError(f"width must be above 0 and at most 4, got {width}.")
        c1, c2, c3, c4, c5 = (max(4, round(c * width)) for c in (96, 256, 384, 384, 256))
        units = max(16, round(4096 * width))
        self.image_size, self.residual, self.changes = image_size, residual, {
            "lrn": lrn, "batch_norm": batch_norm, "small_kernels": small_kernels, "gap": gap, "residual": residual}
        norm = (lambda: BandLocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)) if lrn else nn.Identity
        bn = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
        self.conv1 = (_stack(3, c1, (2, 2, 1), batch_norm) if small_kernels else
                      nn.Conv2d(3, c1, 11, stride=4, padding=2))
        self.bn1, self.act1, self.norm1, self.pool1 = bn(c1), nn.ReLU(inplace=True), norm(), nn.MaxPool2d(3, 2)
        self.conv2 = _stack(c1, c2, (1, 1), batch_norm) if small_kernels else _conv(c1, c2, 5)
        self.bn2, self.act2, self.norm2, self.pool2 = bn(c2), nn.ReLU(inplace=True), norm(), nn.MaxPool2d(3, 2)
        self.conv3, self.bn3, self.act3 = _conv(c2, c3, 3), bn(c3), nn.ReLU(inplace=True)
        self.conv4, self.bn4, self.act4 = _conv(c3, c4, 3), bn(c4), nn.ReLU(inplace=True)
        self.conv5, self.bn5, self.act5 = _conv(c4, c5, 3), bn(c5), nn.ReLU(inplace=True)
        if gap:
            self.pool5 = nn.AdaptiveAvgPool2d(1)
            self.flatten = nn.Flatten()
            self.fc = nn.Linear(c5, num_classes)
        else:
            self.pool5 = nn.MaxPool2d(3, 2)
            self.flatten = nn.Flatten()
            side = self._side_after_pool5(image_size)
            self.fc6 = nn.Linear(c5 * side * side, units)
            self.act6, self.drop6 = nn.ReLU(inplace=True), nn.Dropout(dropout)
            self.fc7, self.act7, self.drop7 = nn.Linear(units, units), nn.ReLU(inplace=True), nn.Dropout(dropout)
            self.fc8 = nn.Linear(units, num_classes)
        self.init = init
        if init == "he":
            self.reset_parameters()
        else:
            self.init_2012()

    def _side_after_pool5(self, image_size: int) -> int:
        """pool5's side at ``image_size``, from a dry run of the convolutions (before the head exists)."""
        if image_size < 63:
            raise ValueError(f"AlexNetVariant needs images of at least 63 px, got {image_size}.")
        self.eval()
        with torch.no_grad():
            side = self.pool5(self.features(torch.zeros(1, 3, image_size, image_size))).shape[-1]
        self.train()
        return side

    def reset_parameters(self) -> None:
        """:class:`AlexNet`'s initialization (He for the convolutions, N(0, 0.01) for the fully connected
        layers, zero biases); batch norms keep their own start, the identity (weight 1, bias 0)."""
        AlexNet.reset_parameters(self)

    def init_2012(self) -> None:
        """The 2012 paper's initialization: every conv and linear weight from N(0, 0.01); biases 1 in conv2,
        conv4, conv5 and the hidden fully connected layers fc6 and fc7 ("provides the ReLUs with positive
        inputs"), 0 elsewhere. The paper's inputs were raw pixels, 0 to 255 less their mean; the course's are
        standardized (divided by 255 and by ImageNet's standard deviation per colour, about 0.23), so conv1's
        weights are scaled by 255 x that deviation: conv1 then starts as the paper's did on the paper's
        inputs. Where a change replaced a layer (3 x 3 stacks), each conv of the stack is drawn the same way,
        its bias as the layer it replaced (the stack's first conv reads the pixels); batch norms keep their
        identity start."""
        ones = ("conv2", "conv4", "conv5", "fc6", "fc7")
        for name, m in self.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.constant_(m.bias, 1.0 if name.split(".")[0] in ones else 0.0)
        first = self.conv1[0] if isinstance(self.conv1, nn.Sequential) else self.conv1
        with torch.no_grad():
            first.weight.mul_(255 * torch.tensor(IMAGENET_STD)[None, :, None, None])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional part: ``N x 3 x S x S`` -> conv5's maps after ReLU (before pool5)."""
        check_input(x, 3, 63, "AlexNetVariant", dtype=next(self.parameters()).dtype)
        x = self.pool1(self.norm1(self.act1(self.bn1(self.conv1(x)))))
        x = self.pool2(self.norm2(self.act2(self.bn2(self.conv2(x)))))
        x = self.act3(self.bn3(self.conv3(x)))
        y = self.bn4(self.conv4(x))
        x = self.act4(y + x if self.residual else y)     # the residual block: conv4 learns a change to its input
        return self.act5(self.bn5(self.conv5(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = tuple(x.shape[-2:])
        x = self.flatten(self.pool5(self.features(x)))
        if hasattr(self, "fc"):
            return self.fc(x)
        if x.shape[1] != self.fc6.in_features:
            raise ValueError(f"This AlexNetVariant's fully connected head was sized for {self.image_size} x "
                             f"{self.image_size} images (image_size={self.image_size}): expected inputs of that size, "
                             f"got {side[0]} x {side[1]}.")
        x = self.drop6(self.act6(self.fc6(x)))
        x = self.drop7(self.act7(self.fc7(x)))
        return self.fc8(x)


def multiply_adds(model: nn.Module, shape: tuple[int, ...]) -> int:
    """How many multiply-adds ``model``'s convolutions and linear layers do for one input of ``shape``
    (``C x H x W``): for a convolution, each output value is ``C_in / groups * k * k`` of them; for a linear
    layer, ``in * out``. (Normalizations, poolings and activations are left out: they are a few per value.)
    Runs one forward pass on zeros, in eval mode, on the model's device."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output[0].numel() * module.in_channels // module.groups * k
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        with torch.no_grad():
            model(torch.zeros(1, *shape, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)

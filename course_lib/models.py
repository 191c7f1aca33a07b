"""The course's networks: LeNet-1 (1989, and its fully connected simplification), LeNet-5 (1998)
and AlexNet (2012).

Layers have plain names (``conv1``, ``act1``, ``pool1``, ...) so that lessons can ask for
them by name when recording activations or showing filters.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


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
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"{model} needs num_classes as a whole number >= 2, got {num_classes!r}.")
    return num_classes


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for the ``with`` block (no dropout), and back in the mode it was in
    afterwards, also when the block raises."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


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
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a whole number >= 1, got {width!r}.")
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


class AlexNet(nn.Module):
    """AlexNet as in Krizhevsky, Sutskever & Hinton (2012).

    conv1 11x11/4 -> 96 maps, ReLU, local response normalization, overlapping 3x3/2 max pooling;
    conv2 5x5 -> 256 (LRN, pooling), conv3 3x3 -> 384, conv4 3x3 -> 384, conv5 3x3 -> 256 (pooling);
    fc6 and fc7 with 4096 units and dropout; fc8 gives the class scores. With ``streams=2`` conv2,
    conv4 and conv5 are grouped convolutions (``groups=2``): each half of the maps sees only its own
    half below, as on the paper's two GPUs, while conv3 and the fully connected layers cross streams.
    60,965,224 parameters at 1000 classes. ``streams=1`` is the single-stream variant.

    Input ``N x 3 x S x S`` with S >= 63 (224 is the paper's crop). At 224 px pool5 gives 6 x 6 maps,
    as in the paper; at the course's smaller crops it gives fewer (3 x 3 at 128 px), and
    ``AdaptiveAvgPool2d((6, 6))`` repeats them up to 6 x 6, so that fc6 keeps the paper's 9,216 inputs
    and the network its parameter count (a departure from the paper, which saw 224 px only). Output
    ``N x num_classes`` logits. :class:`TwoDeviceAlexNet` is the same network on two devices.
    """

    MIN_SIZE = 63

    def __init__(self, num_classes: int = 1000, streams: int = 2, lrn: bool = True, dropout: float = 0.5):
        super().__init__()
        num_classes = check_classes(num_classes, "AlexNet")
        if streams not in (1, 2):
            raise ValueError(f"streams must be 1 or 2, got {streams}.")
        self.streams = streams
        # The paper's LRN is k=2, n=5, alpha=1e-4, beta=0.75 on the *sum* of squares; PyTorch's layer
        # uses alpha/n times that sum, so the paper's alpha is 5 * 1e-4 here. Each GPU normalized over
        # its own maps only, so the sum never crosses from one stream to the other.
        norm = (lambda: StreamLocalResponseNorm(streams, size=5, alpha=5e-4, beta=0.75, k=2.0)) if lrn \
            else nn.Identity
        self.conv1 = nn.Conv2d(3, 96, kernel_size=11, stride=4, padding=2)
        self.act1, self.norm1, self.pool1 = nn.ReLU(inplace=True), norm(), nn.MaxPool2d(3, 2)
        self.conv2 = nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=streams)
        self.act2, self.norm2, self.pool2 = nn.ReLU(inplace=True), norm(), nn.MaxPool2d(3, 2)
        self.conv3 = nn.Conv2d(256, 384, kernel_size=3, padding=1)
        self.act3 = nn.ReLU(inplace=True)
        self.conv4 = nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=streams)
        self.act4 = nn.ReLU(inplace=True)
        self.conv5 = nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=streams)
        self.act5, self.pool5 = nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten()
        self.fc6 = nn.Linear(256 * 6 * 6, 4096)
        self.act6, self.drop6 = nn.ReLU(inplace=True), nn.Dropout(dropout)
        self.fc7 = nn.Linear(4096, 4096)
        self.act7, self.drop7 = nn.ReLU(inplace=True), nn.Dropout(dropout)
        self.fc8 = nn.Linear(4096, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialization for the ReLU convs, N(0, 0.01) for the fully connected layers, zero biases.

        The 2012 paper drew every weight from N(0, 0.01) and trained for 90 epochs; He et al.'s scale
        lets a run of a few epochs start learning at once, which is what a lesson can afford.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional part: ``N x 3 x S x S`` -> conv5 after pooling."""
        check_input(x, 3, self.MIN_SIZE, "AlexNet", dtype=self.conv1.weight.dtype)
        x = self.pool1(self.norm1(self.act1(self.conv1(x))))
        x = self.pool2(self.norm2(self.act2(self.conv2(x))))
        x = self.act3(self.conv3(x))
        x = self.act4(self.conv4(x))
        return self.pool5(self.act5(self.conv5(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.avgpool(self.features(x)))
        x = self.drop6(self.act6(self.fc6(x)))
        x = self.drop7(self.act7(self.fc7(x)))
        return self.fc8(x)

    def stream_filters(self, layer: str = "conv1") -> list[torch.Tensor]:
        """The filters of conv ``layer`` split by stream: a list of ``streams`` CPU tensors
        ``(C_out / streams) x C_in x k x k``. conv1's first 48 filters feed stream 0 of conv2, the
        other 48 stream 1, as on the paper's two GPUs."""
        module = getattr(self, layer, None)
        if not isinstance(module, (nn.Conv2d, SplitConv2d)):
            raise KeyError(f"{layer!r} is not a conv layer of AlexNet: expected conv1 ... conv5.")
        return list(module.weight.detach().float().cpu().chunk(self.streams, dim=0))


class StreamLocalResponseNorm(nn.LocalResponseNorm):
    """``nn.LocalResponseNorm`` applied to each stream's maps apart (the channels split in ``streams``
    equal parts), as on AlexNet's two GPUs: the sum over neighbouring maps stays inside a stream."""

    def __init__(self, streams: int, size: int, alpha: float, beta: float, k: float):
        super().__init__(size, alpha, beta, k)
        self.streams = streams

    def one_stream(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.streams == 1:
            return super().forward(x)
        return torch.cat([self.one_stream(part) for part in x.chunk(self.streams, 1)], 1)


class _Split(nn.Module):
    """A conv or linear layer cut in two by its output maps, ``halves[0]`` on one device and ``halves[1]``
    on the other. ``weight`` and ``bias`` are the whole layer's, joined (on the first half's device), so
    that filter pictures and measures see the layer they know."""

    def __init__(self, layer: nn.Module, devices):
        super().__init__()
        halves = []
        for i, device in enumerate(devices):
            if isinstance(layer, nn.Conv2d):
                # a grouped convolution (groups=2) becomes two plain ones, each reading its own half
                half = nn.Conv2d(layer.in_channels // layer.groups, layer.out_channels // 2, layer.kernel_size,
                                 layer.stride, layer.padding)
            else:
                half = nn.Linear(layer.in_features, layer.out_features // 2)
            with torch.no_grad():
                half.weight.copy_(layer.weight.chunk(2, 0)[i])
                half.bias.copy_(layer.bias.chunk(2, 0)[i])
            halves.append(half.to(device))
        self.halves = nn.ModuleList(halves)

    @property
    def weight(self) -> torch.Tensor:
        return torch.cat([self.halves[0].weight, self.halves[1].weight.to(self.halves[0].weight.device)])

    @property
    def bias(self) -> torch.Tensor:
        return torch.cat([self.halves[0].bias, self.halves[1].bias.to(self.halves[0].bias.device)])


class SplitConv2d(_Split):
    """A convolution split over two devices (:class:`_Split`); it keeps the whole layer's geometry
    (``kernel_size``, ``stride``, ``padding``, ``dilation``, ``groups``) for receptive fields."""

    def __init__(self, layer: nn.Conv2d, devices):
        super().__init__(layer, devices)
        for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"):
            setattr(self, attr, getattr(layer, attr))


class SplitLinear(_Split):
    """A fully connected layer split over two devices by its outputs (:class:`_Split`)."""


class TwoDeviceAlexNet(nn.Module):
    """AlexNet on two devices, as the paper ran it on two GPUs: the two-stream :class:`AlexNet` with every
    layer split in two halves by its output maps, stream 0 on ``devices[0]`` and stream 1 on
    ``devices[1]``. The streams exchange activations only where the paper's GPUs communicated: into conv3,
    fc6 and fc7 (each half reads both halves below) and into fc8 (on ``devices[0]``); conv1, conv2, conv4,
    conv5 and the pooling and normalization stay on their own device.

    It has the grouped network's layer names (``conv1`` ... ``fc8``), its ``features``, ``stream_filters``
    and receptive fields, and its state dict: ``state_dict()`` joins the halves into the grouped layout,
    ``load_state_dict`` takes a grouped network's. With ``devices=("cpu", "cpu")`` it computes the grouped
    network's function. Input ``N x 3 x S x S`` on any device; output ``N x num_classes`` on ``devices[0]``.
    """

    SPLIT = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")   # halved by output maps
    MIN_SIZE = AlexNet.MIN_SIZE

    def __init__(self, num_classes: int = 1000, devices=("cuda:0", "cuda:1"), lrn: bool = True,
                 dropout: float = 0.5):
        super().__init__()
        if len(devices) != 2:
            raise ValueError(f"TwoDeviceAlexNet needs two devices, got devices={devices!r}.")
        self.devices = tuple(torch.device(d) for d in devices)
        self.streams = 2
        grouped = AlexNet(num_classes=num_classes, streams=2, lrn=lrn, dropout=dropout)
        for name, layer in grouped.named_children():      # the grouped network's order: receptive fields walk it
            if name in self.SPLIT:
                layer = (SplitConv2d if isinstance(layer, nn.Conv2d) else SplitLinear)(layer, self.devices)
            setattr(self, name, layer)
        self.fc8.to(self.devices[0])

    def _streams(self, x: torch.Tensor, upto: str) -> list[torch.Tensor]:
        """Both streams from the input up to ``"conv5"`` (after pool5) or ``"fc7"`` (after dropout)."""
        d = self.devices
        local = lambda layer, s: [getattr(self, layer).halves[i](t) for i, t in enumerate(s)]
        both = lambda layer, s: [getattr(self, layer).halves[i](torch.cat([s[0].to(d[i]), s[1].to(d[i])], 1))
                                 for i in range(2)]
        each = lambda f, s: [f(t) for t in s]
        norm1, norm2 = (getattr(n, "one_stream", n) for n in (self.norm1, self.norm2))
        s = [self.conv1.halves[i](x.to(d[i])) for i in range(2)]
        s = each(lambda t: self.pool1(norm1(self.act1(t))), s)
        s = each(lambda t: self.pool2(norm2(self.act2(t))), local("conv2", s))   # each reads its own 48 maps
        s = each(self.act3, both("conv3", s))                                  # the GPUs communicate
        s = each(self.act4, local("conv4", s))
        s = each(lambda t: self.pool5(self.act5(t)), local("conv5", s))
        if upto == "conv5":
            return s
        s = each(lambda t: self.flatten(self.avgpool(t)), s)
        s = each(lambda t: self.drop6(self.act6(t)), both("fc6", s))            # communicate
        return each(lambda t: self.drop7(self.act7(t)), both("fc7", s))         # communicate

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional part, as :meth:`AlexNet.features`: conv5 after pooling, both streams joined
        on ``devices[0]``."""
        check_input(x, 3, self.MIN_SIZE, "TwoDeviceAlexNet", dtype=self.conv1.halves[0].weight.dtype)
        s = self._streams(x, "conv5")
        return torch.cat([s[0], s[1].to(self.devices[0])], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, 3, self.MIN_SIZE, "TwoDeviceAlexNet", dtype=self.conv1.halves[0].weight.dtype)
        s = self._streams(x, "fc7")
        return self.fc8(torch.cat([s[0], s[1].to(self.devices[0])], 1))      # fc8 reads both, on d0

    stream_filters = AlexNet.stream_filters

    def state_dict(self, *args, **kwargs):
        """The grouped :class:`AlexNet`'s state dict (names, shapes and order): each split layer's halves
        joined, on the CPU."""
        halves = super().state_dict(*args, **kwargs)
        joined = {}
        for key, value in halves.items():
            layer, _, rest = key.partition(".halves.")
            if not rest:
                joined[key] = value.cpu()
            elif rest.startswith("0."):
                kind = rest[2:]
                joined[f"{layer}.{kind}"] = torch.cat([value.cpu(), halves[f"{layer}.halves.1.{kind}"].cpu()])
        order = AlexNet(num_classes=self.fc8.out_features).state_dict().keys()
        return {k: joined[k] for k in order}

    def load_state_dict(self, state: dict, strict: bool = True, assign: bool = False):
        """Load a grouped :class:`AlexNet`'s state dict (what :meth:`state_dict` gives), splitting each
        layer of :data:`SPLIT` into its two halves."""
        split = {}
        for key, value in state.items():
            layer, _, kind = key.partition(".")
            if layer in self.SPLIT:
                for i, part in enumerate(value.chunk(2, 0)):
                    split[f"{layer}.halves.{i}.{kind}"] = part
            else:
                split[key] = value
        return super().load_state_dict(split, strict=strict, assign=assign)


def imagenet_alexnet(download: bool = True) -> nn.Module:
    """torchvision's AlexNet trained on ImageNet-1k, in eval mode, for comparison.

    It is the later single-stream variant ("one weird trick", 64 conv1 filters; 56.5 % top-1,
    61,100,840 parameters), not the 2012 two-stream net. Downloads 233 MB once into torch's hub cache
    (with ``download=False`` only a file already there is used). Raises ``RuntimeError`` saying where to
    put the file when it is not there and cannot be downloaded.
    """
    from pathlib import Path

    from torchvision.models import AlexNet_Weights, alexnet

    weights = AlexNet_Weights.IMAGENET1K_V1
    target = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    where = str(target).replace(str(Path.home()), "~", 1)     # the learner's own home, not this machine's
    if not download and not target.exists():
        raise RuntimeError(f"torchvision's pretrained AlexNet is not in torch's hub cache ({where}) and was not "
                           f"downloaded: download {weights.url} there to compare, or skip this comparison.")
    try:
        return alexnet(weights=weights, progress=False).eval()
    except Exception as err:
        raise RuntimeError(
            f"torchvision's pretrained AlexNet could not be downloaded from {weights.url} "
            f"({type(err).__name__}): put that file at {where} by hand, or skip this comparison."
        ) from err


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

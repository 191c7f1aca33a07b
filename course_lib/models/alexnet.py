"""AlexNet as in Krizhevsky, Sutskever & Hinton (2012): two streams as grouped convolutions, local response
normalization within each stream, overlapping pooling, dropout; and its single-stream variant."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .parts import check_classes, check_input


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
    CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")

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
        if layer not in self.CONV_LAYERS:
            raise KeyError(f"{layer!r} is not a conv layer of AlexNet: expected one of {', '.join(self.CONV_LAYERS)}.")
        return list(getattr(self, layer).weight.detach().float().cpu().chunk(self.streams, dim=0))


class BandLocalResponseNorm(nn.LocalResponseNorm):
    """``nn.LocalResponseNorm(size, alpha, beta, k)``, computed as a 1 x 1 convolution of the squared maps with
    a band of ones: map ``c`` is divided by ``(k + alpha / size * sum of x**2 over maps c - size // 2 ..
    c + (size - 1) // 2) ** beta``, as torch's (which pads and average-pools a 5-d copy: 1.5 to 2.5 times
    slower forward and backward on a CPU at AlexNet's conv1 and conv2 maps, ``benchmarks/band_lrn.py``).
    Equal to torch's up to rounding. The denominator is computed in float32 even under autocast (as torch's
    is): in bfloat16, ``alpha / size * sum`` would be rounded away next to ``k``. Takes and returns
    ``N x C x H x W`` (the input's dtype); raises ``ValueError`` for another shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"BandLocalResponseNorm takes N x C x H x W maps, got a tensor of shape {tuple(x.shape)}.")
        channels = torch.arange(x.shape[1], device=x.device)
        offset = channels[None, :] - channels[:, None]      # [c, j]: how far map j is from map c
        wide = x.to(torch.promote_types(x.dtype, torch.float32))         # float32 at least
        band = ((offset >= -(self.size // 2)) & (offset <= (self.size - 1) // 2)).to(wide.dtype)[:, :, None, None]
        with torch.autocast(x.device.type, enabled=False):
            squares = F.conv2d(wide * wide, band)
            return (wide * (self.k + self.alpha / self.size * squares).pow(-self.beta)).to(x.dtype)


class StreamLocalResponseNorm(BandLocalResponseNorm):
    """Local response normalization applied to each stream's maps apart (the channels split in ``streams``
    equal parts), as on AlexNet's two GPUs: the sum over neighbouring maps stays inside a stream. Each stream is
    normalized by :class:`BandLocalResponseNorm` (``nn.LocalResponseNorm``'s numbers, faster on a CPU)."""

    def __init__(self, streams: int, size: int, alpha: float, beta: float, k: float):
        super().__init__(size, alpha, beta, k)
        self.streams = streams

    def one_stream(self, x: torch.Tensor) -> torch.Tensor:
        """One stream's maps normalized (what each device computes in :class:`TwoDeviceAlexNet`)."""
        return super().forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.streams == 1:
            return self.one_stream(x)
        return torch.cat([self.one_stream(part) for part in x.chunk(self.streams, 1)], 1)

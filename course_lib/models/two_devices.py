"""AlexNet on two devices, as the 2012 paper ran it on two GPUs: every layer split in two halves by its
output maps, the halves exchanging activations only where the paper's GPUs communicated."""

from __future__ import annotations

import torch
import torch.nn as nn

from .alexnet import AlexNet
from .parts import check_input


class _Split(nn.Module):
    """A conv or linear layer cut in two by its output maps, ``halves[0]`` on one device and ``halves[1]``
    on the other. ``weight`` and ``bias`` are the whole layer's, joined (on the first half's device), so
    that filter pictures and measures see the layer they know; so is its state dict (``PREFIX.weight``,
    ``PREFIX.bias`` in the grouped layer's shapes, under any prefix: inside a ``Sequential``, DDP or a
    compiled wrapper), and loading splits a grouped layer's weights into the halves."""

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
        # the hooks' public names arrived in torch 2.5; the course admits torch 2.4
        on_save = getattr(self, "register_state_dict_post_hook", None) or self._register_state_dict_hook
        on_save(_Split._joined_state)
        self._register_load_state_dict_pre_hook(_Split._split_state, with_module=True)

    @staticmethod
    def _joined_state(module, state_dict, prefix, local_metadata) -> None:
        for kind in ("weight", "bias"):
            parts = [state_dict.pop(f"{prefix}halves.{i}.{kind}") for i in range(2)]
            state_dict[prefix + kind] = torch.cat([parts[0], parts[1].to(parts[0].device)])

    @staticmethod
    def _split_state(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors) -> None:
        for kind in ("weight", "bias"):
            if prefix + kind in state_dict:
                for i, part in enumerate(state_dict.pop(prefix + kind).chunk(2, 0)):
                    state_dict[f"{prefix}halves.{i}.{kind}"] = part

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
    and receptive fields, and its state dict: ``state_dict()`` is the grouped network's (names, shapes and
    order), and ``load_state_dict`` takes a grouped network's. With ``devices=("cpu", "cpu")`` it computes the grouped
    network's function. Input ``N x 3 x S x S`` on any device; output ``N x num_classes`` on ``devices[0]``.
    """

    SPLIT = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")   # halved by output maps
    MIN_SIZE = AlexNet.MIN_SIZE
    CONV_LAYERS = AlexNet.CONV_LAYERS

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

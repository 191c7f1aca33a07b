"""Measuring what a network learned: activations, sparsity, dead units, localization, filter
smoothness, frequency and color, resemblance to the picture, receptive fields.

:class:`ActivationRecorder` attaches forward hooks only for the duration of a ``with`` block and
removes them on exit, also when the block raises, so re-running a notebook cell never stacks hooks.
"""

from __future__ import annotations

import weakref
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import SparseConv2d, SplitConv2d, Subsample, evaluating

# Layers recorded by default: the ones whose outputs a learner wants to look at.
_RECORDED = (nn.Conv2d, SparseConv2d, Subsample, nn.Linear, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.GELU,
             nn.MaxPool2d, nn.AvgPool2d, nn.LocalResponseNorm)

# model -> its live recorder, so that starting a second recorder on a model removes the first's hooks
_LIVE: "weakref.WeakKeyDictionary[nn.Module, ActivationRecorder]" = weakref.WeakKeyDictionary()


def layer_names(model: nn.Module, kinds: tuple[type, ...] = _RECORDED) -> list[str]:
    """Names of the model's layers of the given kinds, in definition order (e.g. ``["conv1", "act1", ...]``)."""
    return [name for name, m in model.named_modules() if name and isinstance(m, kinds)]


class ActivationRecorder:
    """Record the outputs of named layers while the ``with`` block runs.

    ``ActivationRecorder(model, layers=None, device="cpu")``: ``layers`` is a list of module names
    (default: every conv, linear, activation, pooling and LRN layer). Outputs are stored detached,
    on ``device`` (``None`` keeps the model's device); several forward passes are concatenated along
    the batch dimension. After the block, ``recorder.activations`` maps each name to a tensor
    ``N x C x H x W`` (conv) or ``N x F`` (linear). An unknown name raises ``KeyError`` listing the
    valid names.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str] | None = None,
                 device: torch.device | str | None = "cpu"):
        modules = dict(model.named_modules())
        names = list(layers) if layers is not None else layer_names(model)
        unknown = [n for n in names if n not in modules or n == ""]
        if unknown:
            raise KeyError(
                f"Unknown layer name(s) {unknown} for {type(model).__name__}: "
                f"valid names are {layer_names(model, (nn.Module,))}."
            )
        self.model = model
        self.layers = names
        self.device = device
        self._modules = {n: modules[n] for n in names}
        self._chunks: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        self._handles: list = []

    def __enter__(self) -> "ActivationRecorder":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "ActivationRecorder":
        """Attach the hooks (``with`` does this for you). A recorder already live on the model is stopped."""
        previous = _LIVE.get(self.model)
        if previous is not None and previous is not self:
            previous.stop()
        self.stop()
        for name, module in self._modules.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))
        _LIVE[self.model] = self
        return self

    def stop(self) -> None:
        """Remove every hook this recorder attached. Safe to call twice."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if _LIVE.get(self.model) is self:
            del _LIVE[self.model]

    def _hook(self, name: str):
        def hook(module, inputs, output):
            out = output.detach()
            if self.device is not None:
                out = out.to(self.device)
            self._chunks[name].append(out.float().clone())
        return hook

    @property
    def activations(self) -> dict[str, torch.Tensor]:
        """``{layer name: outputs concatenated over the recorded batches}`` (empty layers left out)."""
        return {n: torch.cat(c) for n, c in self._chunks.items() if c}


# What record() may hold at once on the CPU; beyond it the learner is told to ask for less.
RECORD_LIMIT_BYTES = 2 * 2**30


def record(model: nn.Module, images: torch.Tensor, layers: Sequence[str] | None = None,
           mean=None, std=None, batch_size: int = 256,
           max_bytes: int = RECORD_LIMIT_BYTES) -> dict[str, torch.Tensor]:
    """Run ``model`` on uint8 ``images`` (``N x C x H x W``, normalized like in training) in eval mode,
    ``batch_size`` images at a time, and return ``{layer: activations on the CPU}``.

    Before the run it measures one image's activations and raises ``ValueError`` when all of them would
    take more than ``max_bytes`` (default 2 GiB), naming the size and how to ask for less (fewer images,
    fewer ``layers``). The model is left in the mode it was in.
    """
    from .loader import check_images, normalize

    check_images(images, "probe images")
    dev = next(model.parameters()).device
    with evaluating(model):
        with ActivationRecorder(model, layers) as probe_one, torch.no_grad():
            model(normalize(images[:1].to(dev), mean, std))
        per_image = sum(a[0].numel() * 4 for a in probe_one.activations.values())
        if per_image * len(images) > max_bytes:
            raise ValueError(
                f"Recording {len(probe_one.activations)} layers for {len(images):,} images would hold "
                f"{per_image * len(images) / 2**30:.1f} GiB ({per_image / 2**10:.0f} KiB per image), more than "
                f"{max_bytes / 2**30:.1f} GiB: pass fewer images, or only the layers you need "
                f"(layers=[...], from {layer_names(model)}).")
        with ActivationRecorder(model, layers) as rec, torch.no_grad():
            for start in range(0, len(images), batch_size):
                model(normalize(images[start:start + batch_size].to(dev), mean, std))
    return rec.activations


class Snapshots:
    """An end-of-epoch hook for ``train.fit`` that keeps the network's weights and its activations on a
    fixed probe batch, so that lessons can scrub through training afterwards.

    ``Snapshots(probe, every=1, layers=None, mean=None, std=None)``: ``probe`` is uint8
    ``P x C x H x W``; a snapshot is taken before training (epoch 0), every ``every`` epochs and after
    the last. Each is appended to ``history.snapshots`` as ``{"epoch", "state", "activations"}`` (CPU
    tensors; ``activations`` maps each of ``layers``, default every recorded layer, to ``P x ...``).
    """

    def __init__(self, probe: torch.Tensor, every: int = 1, layers: Sequence[str] | None = None,
                 mean=None, std=None):
        if every < 1:
            raise ValueError(f"Snapshots need every >= 1 (epochs between snapshots), got {every}.")
        self.probe, self.every, self.layers, self.mean, self.std = probe, every, layers, mean, std

    def __call__(self, model: nn.Module, epoch: int, history, last: bool) -> None:
        if epoch == 0 or epoch % self.every == 0 or last:
            history.snapshots.append(self.take(model, epoch))

    def take(self, model: nn.Module, epoch: int) -> dict:
        """One snapshot of ``model`` now: ``{"epoch", "state", "activations"}`` on the CPU."""
        from .loader import normalize

        device = next(model.parameters()).device
        with evaluating(model), ActivationRecorder(model, self.layers, device="cpu") as rec, torch.no_grad():
            model(normalize(self.probe.to(device), self.mean, self.std))
        return {"epoch": epoch, "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                "activations": rec.activations}


def sparsity(activations: torch.Tensor, threshold: float = 0.0) -> float:
    """Share of entries whose absolute value is at most ``threshold`` (0 = exactly zero), in [0, 1].

    After a ReLU this is the share of units that are off. Takes a tensor of any shape.
    """
    return (activations.abs() <= threshold).float().mean().item()


def dead_filters(activations: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Which channels are dead: at most ``threshold`` in absolute value for every input and position.

    Takes ``N x C x H x W`` (or ``N x C``) activations on a probe batch; returns a bool tensor of
    length C (True = dead). Record them after the nonlinearity: a ReLU unit is dead when its output
    is zero for every input.
    """
    if activations.dim() not in (2, 4):
        raise ValueError(f"Expected activations N x C x H x W or N x C, got {tuple(activations.shape)}.")
    per_channel = activations.abs().transpose(0, 1).reshape(activations.shape[1], -1).amax(1)
    return per_channel <= threshold


def color_score(weights: torch.Tensor) -> torch.Tensor:
    """How much each 3-channel filter depends on color rather than on brightness, in [0, 1].

    Takes ``C_out x 3 x k x k`` weights; returns ``C_out`` numbers: the share of the filter's energy
    that is left after removing its channel mean (its grayscale part). 0 means the same pattern in
    R, G and B (a grayscale filter); values near 1 mean the channels disagree (a color filter).
    """
    if weights.dim() != 4 or weights.shape[1] != 3:
        raise ValueError(f"color_score needs RGB filters C_out x 3 x k x k, got {tuple(weights.shape)}.")
    w = weights.detach().float().cpu()
    gray = w.mean(1, keepdim=True)
    color = w - gray
    return color.pow(2).sum((1, 2, 3)) / w.pow(2).sum((1, 2, 3)).clamp_min(1e-12)


def conv_weights(model: nn.Module, layer: str) -> torch.Tensor:
    """The weights of conv layer ``layer`` as a CPU tensor ``C_out x C_in x k x k``."""
    modules = dict(model.named_modules())
    if layer not in modules or not isinstance(modules[layer], (nn.Conv2d, SparseConv2d, SplitConv2d)):
        raise KeyError(f"{layer!r} is not a conv layer: expected one of {conv_layer_names(model)}.")
    return modules[layer].weight.detach().float().cpu()


def conv_layer_names(model: nn.Module) -> list[str]:
    """Names of the model's convolution layers (``Conv2d``, LeNet-1's ``SparseConv2d``, and the layers of
    a network split over two devices, not their halves)."""
    names = layer_names(model, (nn.Conv2d, SparseConv2d, SplitConv2d))
    return [n for n in names if ".halves." not in n]


def weights_from_state(state: dict, layer: str) -> torch.Tensor:
    """Conv weights ``layer`` from a state dict (e.g. a training snapshot)."""
    key = f"{layer}.weight"
    if key not in state:
        raise KeyError(f"No weights for {layer!r} in this state: expected one of "
                       f"{sorted(k[:-7] for k in state if k.endswith('.weight'))}.")
    return state[key].float()


def live_sparsity(activations: torch.Tensor) -> float:
    """Share of exactly-zero entries among the channels that are alive (not zero everywhere).

    Takes ``N x C x H x W`` or ``N x C`` activations (after a ReLU). Separates "sparse" from "dead":
    a layer whose channels died is not selective, it is broken. Returns a number in [0, 1], or NaN
    when every channel is dead.
    """
    live = ~dead_filters(activations)
    if not live.any():
        return float("nan")
    return sparsity(activations[:, live])


def localization(activations: torch.Tensor, top: float = 0.1) -> float:
    """How concentrated each feature map is: the share of its total activation held by its top
    ``top`` fraction of positions, averaged over the (image, channel) maps that are not all zero.

    Takes ``N x C x H x W`` non-negative activations (after a ReLU). A map that is the same
    everywhere scores ``top`` (0.1 by default); a map with one bright spot scores near 1. Returns a
    float, or NaN when every map is zero.
    """
    if activations.dim() != 4:
        raise ValueError(f"Expected feature maps N x C x H x W, got {tuple(activations.shape)}.")
    maps = activations.clamp_min(0).flatten(2)  # N x C x positions
    k = max(1, round(top * maps.shape[-1]))
    total = maps.sum(-1)
    share = maps.topk(k, dim=-1).values.sum(-1) / total.clamp_min(1e-12)
    lit = total > 0
    return share[lit].mean().item() if lit.any() else float("nan")


def _power_spectrum(weights: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Power of each filter's 2-D spectrum summed over input channels (``C_out x size x size``) and
    the radial frequency of each bin in cycles/pixel (``size x size``)."""
    if weights.dim() != 4:
        raise ValueError(f"Expected conv weights C_out x C_in x k x k, got {tuple(weights.shape)}.")
    w = weights.detach().float().cpu()
    power = torch.fft.fft2(w, s=(size, size)).abs().pow(2).sum(1)
    f = torch.fft.fftfreq(size)
    return power, (f.view(-1, 1) ** 2 + f.view(1, -1) ** 2).sqrt()


def filter_smoothness(weights: torch.Tensor, cutoff: float = 0.25, size: int = 32) -> torch.Tensor:
    """Smoothness of each filter: the share of its spectral energy below ``cutoff`` cycles/pixel.

    Takes ``C_out x C_in x k x k`` weights; returns ``C_out`` numbers in [0, 1]. The filter is
    zero-padded to ``size x size`` before the FFT (a finer frequency grid) and the energy is summed
    over input channels. A Gaussian blob scores near 1; white noise scores about the low-frequency
    share of the frequency plane (pi * cutoff**2, about 0.2 for the default).
    """
    power, radius = _power_spectrum(weights, size)
    low = (radius <= cutoff).float()
    return (power * low).sum((1, 2)) / power.sum((1, 2)).clamp_min(1e-12)


def filter_frequency(weights: torch.Tensor, size: int = 32) -> torch.Tensor:
    """The spatial frequency of each filter: the energy-weighted mean of its spectrum's radial
    frequency, in cycles/pixel (0 = constant, 0.5 = alternating pixels; white noise about 0.38).

    Takes ``C_out x C_in x k x k`` weights; returns ``C_out`` numbers in [0, 0.71]. Energy is summed
    over input channels, so a color blob (constant in space, different per channel) is low-frequency.
    """
    power, radius = _power_spectrum(weights, size)
    return (power * radius).sum((1, 2)) / power.sum((1, 2)).clamp_min(1e-12)


def best_correlation(maps: torch.Tensor, picture: torch.Tensor) -> float:
    """The largest |Pearson correlation| between one of the feature maps and the picture.

    Takes ``maps`` ``C x h x w`` (one image's feature maps) and ``picture`` ``H x W`` (gray), which
    is area-averaged down to ``h x w``. Constant maps count as 0. Returns a float in [0, 1].
    """
    if maps.dim() != 3 or picture.dim() != 2:
        raise ValueError(f"Expected maps C x h x w and a gray picture H x W, got {tuple(maps.shape)} "
                         f"and {tuple(picture.shape)}.")
    g = F.adaptive_avg_pool2d(picture[None, None].float(), maps.shape[-2:]).flatten()
    g = (g - g.mean()) / g.std().clamp_min(1e-12)
    m = maps.float().flatten(1)
    std = m.std(1)
    m = (m - m.mean(1, keepdim=True)) / std.clamp_min(1e-12).unsqueeze(1)
    corr = (m @ g) / (len(g) - 1)
    return corr[std > 1e-8].abs().max().item() if (std > 1e-8).any() else 0.0


def resemblance(maps: torch.Tensor, picture: torch.Tensor, shuffles: int = 20, seed: int = 0) -> dict:
    """How much a layer's maps look like the picture, corrected for chance.

    The best |correlation| of a map with the picture (:func:`best_correlation`) is large by chance
    when maps are small and many; so it is compared with the same number for the picture's pixels
    shuffled (``shuffles`` times at the maps' resolution). Takes ``maps`` ``C x h x w`` and a gray
    ``picture`` ``H x W``; returns ``{"raw", "chance", "corrected"}`` with corrected = raw - chance
    (0: no more than chance).
    """
    raw = best_correlation(maps, picture)
    small = F.adaptive_avg_pool2d(picture[None, None].float(), maps.shape[-2:])[0, 0]
    gen = torch.Generator().manual_seed(seed)
    chance = sum(best_correlation(maps, small.flatten()[torch.randperm(small.numel(), generator=gen)]
                                  .view_as(small)) for _ in range(shuffles)) / shuffles
    return {"raw": raw, "chance": chance, "corrected": raw - chance}


def receptive_field(model: nn.Module, layer: str) -> tuple[int, int, int]:
    """The receptive field of one unit of ``layer``: ``(size, stride, offset)`` in input pixels.

    Unit ``(i, j)`` of the layer's output sees the input square whose rows (and columns) are
    ``offset + i * stride`` to ``offset + i * stride + size - 1`` (parts may fall in the padding).
    Walks the model's convolutions and poolings in definition order up to ``layer``, so it suits
    models that run their layers in that order (LeNet-1, LeNet-5, AlexNet up to conv5). E.g. AlexNet's
    conv5 units see 163 x 163 pixels, 16 apart.
    """
    names = [n for n, _ in model.named_modules() if n]
    if layer not in names:
        raise KeyError(f"Unknown layer {layer!r} for {type(model).__name__}: valid names are {names}.")
    size, stride, offset = 1, 1, 0
    counted = ()   # a layer split over two devices counts once, not once more for each of its halves
    for name, m in model.named_modules():
        if counted and name.startswith(counted):
            continue
        if isinstance(m, nn.Linear) or isinstance(m, nn.Flatten):
            raise ValueError(f"{layer!r} comes after {name!r}: a unit there sees the whole image.")
        k = s = p = None
        if isinstance(m, SplitConv2d):
            counted += (name + ".",)
        if isinstance(m, (nn.Conv2d, SplitConv2d, nn.MaxPool2d, nn.AvgPool2d)):
            pair = lambda v: v if isinstance(v, int) else v[0]
            k, s, p = pair(m.kernel_size), pair(m.stride), pair(m.padding)
            if isinstance(m, (nn.Conv2d, SplitConv2d)):
                k = (k - 1) * pair(m.dilation) + 1
        elif isinstance(m, SparseConv2d):
            k, s, p = m.kernel_size, 1, 0
        elif isinstance(m, Subsample):
            k, s, p = 2, 2, 0
        if k is not None:
            offset -= p * stride
            size += (k - 1) * stride
            stride *= s
        if name == layer:
            return size, stride, offset
    raise AssertionError("unreachable")


def top_patches(activations: torch.Tensor, images: torch.Tensor, channel: int, k: int,
                field: tuple[int, int, int]) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """The ``k`` image regions that excite ``channel`` most: what one unit "looks for".

    Takes ``activations`` ``N x C x h x w`` of a layer on ``images`` ``N x C_img x H x W`` and that
    layer's ``field`` = :func:`receptive_field`. Finds the ``k`` largest values of the channel over
    every image and position and cuts each unit's receptive field out of its image (zero where it
    falls outside). Returns ``(patches k x C_img x size x size, [(image, row, col), ...])``, largest
    first.
    """
    if activations.dim() != 4 or not 0 <= channel < activations.shape[1]:
        raise ValueError(f"Expected activations N x C x h x w and a channel in 0..C-1, got "
                         f"{tuple(activations.shape)} and channel {channel}.")
    size, stride, offset = field
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
    max pooling and ReLU close for one image). Returns a bool ``H x W`` mask; compare its bounding box
    with :func:`receptive_field`."""
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"Expected float images N x C x H x W, got {images.dtype} {tuple(images.shape)}.")
    module = dict(model.named_modules()).get(layer)
    if module is None:
        raise KeyError(f"Unknown layer {layer!r} for {type(model).__name__}: valid names are "
                       f"{[n for n, _ in model.named_modules() if n]}.")
    grabbed = {}
    handle = module.register_forward_hook(lambda m, i, o: grabbed.__setitem__("out", o))
    device = next(model.parameters()).device
    with evaluating(model):
        try:
            x = images.detach().to(device).clone().requires_grad_(True)
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
    return (grad != 0).any(1).any(0).cpu()

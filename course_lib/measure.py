"""Measuring what a network learned: its activations on real images (:func:`record`), and numbers about
them and about its filters — sparsity, dead units, localization, smoothness, spatial frequency and colour,
resemblance to the picture. Receptive fields are in :mod:`.receptive_fields`.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import CONV_LAYERS, ActivationRecorder, device_of, evaluating, find_layer, layer_names
from .loader import check_images, normalize

__all__ = ["RECORD_LIMIT_BYTES", "best_correlation", "color_score",
           "conv_weights", "dead_filters", "filter_frequency", "filter_smoothness", "live_sparsity",
           "localization", "record", "resemblance", "sparsity", "weights_from_state"]

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
    check_images(images, "probe images")
    dev = device_of(model)
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
    return find_layer(model, layer, CONV_LAYERS).weight.detach().float().cpu()


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

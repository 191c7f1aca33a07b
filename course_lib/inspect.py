"""Looking inside a trained network: activations, sparsity, dead filters, filter smoothness and color.

:class:`ActivationRecorder` attaches forward hooks only for the duration of a ``with`` block and
removes them on exit, also when the block raises, so re-running a notebook cell never stacks hooks.
"""

from __future__ import annotations

import weakref
from typing import Sequence

import torch
import torch.nn as nn

# Layers recorded by default: the ones whose outputs a learner wants to look at.
_RECORDED = (nn.Conv2d, nn.Linear, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.GELU,
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

    @property
    def active(self) -> bool:
        """True while hooks are attached."""
        return bool(self._handles)

    def _hook(self, name: str):
        def hook(module, inputs, output):
            out = output.detach()
            if self.device is not None:
                out = out.to(self.device)
            self._chunks[name].append(out.float().clone())
        return hook

    def clear(self) -> None:
        """Forget what was recorded so far."""
        for chunks in self._chunks.values():
            chunks.clear()

    @property
    def activations(self) -> dict[str, torch.Tensor]:
        """``{layer name: outputs concatenated over the recorded batches}`` (empty layers left out)."""
        return {n: torch.cat(c) for n, c in self._chunks.items() if c}


def record(model: nn.Module, images: torch.Tensor, layers: Sequence[str] | None = None,
           mean=None, std=None) -> dict[str, torch.Tensor]:
    """Run ``model`` on uint8 ``images`` (``N x C x H x W``, normalized like in training) in eval mode
    and return ``{layer: activations on the CPU}``."""
    from .data import normalize

    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with ActivationRecorder(model, layers) as rec, torch.no_grad():
        model(normalize(images.to(dev), mean, std))
    model.train(was_training)
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


def filter_smoothness(weights: torch.Tensor, cutoff: float = 0.25, size: int = 32) -> torch.Tensor:
    """Smoothness of each filter: the share of its spectral energy below ``cutoff`` cycles/pixel.

    Takes ``C_out x C_in x k x k`` weights; returns ``C_out`` numbers in [0, 1]. The filter is
    zero-padded to ``size x size`` before the FFT (a finer frequency grid) and the energy is summed
    over input channels. A Gaussian blob scores near 1; white noise scores about the low-frequency
    share of the frequency plane (pi * cutoff**2, about 0.2 for the default).
    """
    if weights.dim() != 4:
        raise ValueError(f"Expected conv weights C_out x C_in x k x k, got {tuple(weights.shape)}.")
    w = weights.detach().float().cpu()
    power = torch.fft.fft2(w, s=(size, size)).abs().pow(2).sum(1)  # C_out x size x size
    f = torch.fft.fftfreq(size)
    radius = (f.view(-1, 1) ** 2 + f.view(1, -1) ** 2).sqrt()
    low = (radius <= cutoff).float()
    total = power.sum((1, 2)).clamp_min(1e-12)
    return (power * low).sum((1, 2)) / total


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


def summarize(activations: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Per layer: ``{"shape", "sparsity", "dead"}`` (dead = number of dead channels)."""
    return {name: {"shape": tuple(a.shape), "sparsity": sparsity(a), "dead": int(dead_filters(a).sum())}
            for name, a in activations.items() if a.dim() in (2, 4)}


def conv_weights(model: nn.Module, layer: str) -> torch.Tensor:
    """The weights of conv layer ``layer`` as a CPU tensor ``C_out x C_in x k x k``."""
    modules = dict(model.named_modules())
    if layer not in modules or not isinstance(modules[layer], nn.Conv2d):
        raise KeyError(f"{layer!r} is not a conv layer: expected one of {conv_layer_names(model)}.")
    return modules[layer].weight.detach().float().cpu()


def conv_layer_names(model: nn.Module) -> list[str]:
    """Names of the model's ``Conv2d`` layers."""
    return layer_names(model, (nn.Conv2d,))


def weights_from_state(state: dict, layer: str) -> torch.Tensor:
    """Conv weights ``layer`` from a state dict (e.g. a training snapshot)."""
    key = f"{layer}.weight"
    if key not in state:
        raise KeyError(f"No weights for {layer!r} in this state: expected one of "
                       f"{sorted(k[:-7] for k in state if k.endswith('.weight'))}.")
    return state[key].float()

"""The layers of a network: finding them by name, which kinds there are, running the network in eval mode,
and recording what its layers output.

:class:`ActivationRecorder` attaches forward hooks only while it records and removes them afterwards, also
when the recording raises (pytorch-grad-cam's hook classes are the model), so re-running a notebook cell
never stacks hooks. Recorders nest: one inside another (``measure.record`` inside a recorder, ``fit``'s
snapshots, a widget) leaves the outer one recording everything.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Iterator, Sequence

import torch
import torch.nn as nn

from .models import SparseConv2d, SplitConv2d, Subsample

# The layers whose units look at a square of the input below: convolutions and poolings (their receptive
# fields grow layer by layer; a network's picture shows them with their maps).
SPATIAL_LAYERS = (nn.Conv2d, SparseConv2d, SplitConv2d, Subsample, nn.MaxPool2d, nn.AvgPool2d)
CONV_LAYERS = (nn.Conv2d, SparseConv2d, SplitConv2d)
ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.GELU)
# Recorded by default: the layers whose outputs a learner wants to look at.
RECORDED = (nn.Conv2d, SparseConv2d, Subsample, nn.Linear, *ACTIVATIONS, nn.MaxPool2d, nn.AvgPool2d,
            nn.LocalResponseNorm)


def layer_names(model: nn.Module, kinds: tuple[type, ...] = RECORDED) -> list[str]:
    """Names of the model's layers of the given kinds, in definition order (e.g. ``["conv1", "act1", ...]``);
    a layer split over two devices counts once, not once more for each of its halves."""
    names = [name for name, m in model.named_modules() if name and isinstance(m, kinds)]
    return [n for n in names if ".halves." not in n]


def conv_layer_names(model: nn.Module) -> list[str]:
    """Names of the model's convolution layers (``Conv2d``, LeNet-1's ``SparseConv2d``, a layer split over
    two devices)."""
    return layer_names(model, CONV_LAYERS)


def find_layer(model: nn.Module, layer: nn.Module | str, kinds: tuple[type, ...] | None = None) -> nn.Module:
    """``layer`` as a module of ``model``: a name such as ``"conv2"`` or ``"features.10"``, or a module that
    belongs to the model; with ``kinds``, it must be one of those. Raises ``KeyError`` listing the valid
    names (of those kinds)."""
    valid = layer_names(model, kinds or (nn.Module,))
    module = None
    if isinstance(layer, str):
        module = dict(model.named_modules()).get(layer) if layer else None
    elif isinstance(layer, nn.Module) and any(m is layer for m in model.modules()):
        module = layer
    if module is None and not isinstance(layer, str):
        raise KeyError(f"layer must be a module of the model or one of its names {valid}, got "
                       f"{type(layer).__name__}.")
    if module is None or (kinds is not None and not isinstance(module, kinds)):
        kind = " of that kind" if kinds is not None and module is not None else ""
        raise KeyError(f"Unknown layer {layer!r}{kind} for {type(model).__name__}: valid names are {valid}.")
    return module


def check_layer_names(model: nn.Module, names: Sequence[str], kinds: tuple[type, ...] | None = None) -> list[str]:
    """``names`` as a list, each checked with :func:`find_layer` (one ``KeyError`` naming every unknown one)."""
    if isinstance(names, str):
        names = [names]
    unknown = []
    for name in names:
        try:
            find_layer(model, name, kinds)
        except KeyError:
            unknown.append(name)
    if unknown or not names:
        raise KeyError(f"Unknown layer name(s) {unknown or list(names)} for {type(model).__name__}: valid names "
                       f"are {layer_names(model, kinds or (nn.Module,))}.")
    twice = sorted({n for n in names if list(names).count(n) > 1})
    if twice:
        raise ValueError(f"Layer name(s) {twice} listed twice: expected each layer once.")
    return list(names)


def copy_without_hooks(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` without the forward hooks and pre-hooks on it and its layers (``deepcopy``
    keeps them, and their closures still write to the original's recorders)."""
    import copy

    new = copy.deepcopy(model)
    for m in new.modules():
        for hooks in (m._forward_hooks, m._forward_pre_hooks, getattr(m, "_forward_hooks_with_kwargs", {}),
                      getattr(m, "_forward_hooks_always_called", {}), getattr(m, "_forward_pre_hooks_with_kwargs", {})):
            hooks.clear()
    return new


class _OncePerPass:
    """Counts, during one forward pass of ``model``, how often each recorded layer runs, and refuses a layer
    that runs twice (one module used at two places): a recorder keeps one output a layer per pass. Outside a
    pass of the whole model (a part of it called on its own) nothing is counted."""

    def __init__(self, model: nn.Module, modules: dict[str, nn.Module]):
        self.model, self.modules, self.counts, self.handles = model, modules, None, []

    def attach(self) -> None:
        self.handles.append(self.model.register_forward_pre_hook(self._begin))
        self.handles.append(self.model.register_forward_hook(self._end, always_call=True))

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _begin(self, module, inputs) -> None:
        self.counts = {}

    def _end(self, module, inputs, output) -> None:
        self.counts = None

    def ran(self, name: str) -> None:
        """Count one run of layer ``name``; raises ``ValueError`` on its second in one pass."""
        if self.counts is None:
            return
        self.counts[name] = self.counts.get(name, 0) + 1
        if self.counts[name] > 1:
            self.counts = None
            raise ValueError(f"Layer {name!r} ({type(self.modules[name]).__name__}) ran twice in one forward pass "
                             f"of {type(self.model).__name__}: the same module is used at two places. A recording "
                             f"keeps one output a layer: expected each use to be its own module (e.g. a second "
                             f"nn.ReLU()).")


def input_channels(model: nn.Module) -> int:
    """How many channels the model's input has, read from its first convolution. Raises ``ValueError``
    when it has none (pass the number yourself)."""
    first = next((m for m in model.modules() if isinstance(m, (*CONV_LAYERS, nn.Linear))), None)
    if first is not None and hasattr(first, "in_channels"):
        return first.in_channels
    raise ValueError(f"Cannot tell how many input channels {type(model).__name__} reads: pass channels=.")


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


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


@contextlib.contextmanager
def for_gradients(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode with out-of-place ReLUs for the block (a gradient with respect to the input
    cannot pass an in-place ReLU's hooks); its mode and ReLUs restored after, also when the block raises."""
    inplace = [m for m in model.modules() if isinstance(m, nn.ReLU) and m.inplace]
    with evaluating(model):
        try:
            for m in inplace:
                m.inplace = False
            yield model
        finally:
            for m in inplace:
                m.inplace = True


# model -> the recorder started on it with start() (not a ``with`` block): starting another that way
# replaces it, so that a notebook cell run twice never leaves two sets of hooks.
_STARTED: "weakref.WeakKeyDictionary[nn.Module, ActivationRecorder]" = weakref.WeakKeyDictionary()


class ActivationRecorder:
    """Record the outputs of named layers while it records.

    ``ActivationRecorder(model, layers=None, device="cpu")``: ``layers`` is a list of module names
    (default: every conv, linear, activation, pooling and LRN layer). Outputs are stored detached,
    on ``device`` (``None`` keeps the model's device); several forward passes are concatenated along
    the batch dimension. ``recorder.activations`` maps each name to a tensor ``N x C x H x W`` (conv)
    or ``N x F`` (linear). An unknown name raises ``KeyError`` listing the valid names.

    Record with ``with ActivationRecorder(model) as rec:`` (the hooks go at the end of the block), or with
    ``rec.start()`` ... ``rec.stop()``; a recorder started that way replaces the one started before it
    on the same model (a cell run again), but never one recording in a ``with`` block.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str] | None = None,
                 device: torch.device | str | None = "cpu"):
        names = check_layer_names(model, layers) if layers is not None else layer_names(model)
        self.model = model
        self.layers = names
        self.device = device
        self._modules = {n: find_layer(model, n) for n in names}
        self._chunks: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        self._handles: list = []
        self._once = _OncePerPass(model, self._modules)

    def __enter__(self) -> "ActivationRecorder":
        if self._handles:
            raise RuntimeError("This ActivationRecorder is already recording: expected one with block (or "
                               "start()) at a time; use another recorder to record inside it.")
        self._attach()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "ActivationRecorder":
        """Attach the hooks until :meth:`stop` (``with`` does both for you). A recorder started with
        ``start()`` earlier on the same model is stopped first."""
        previous = _STARTED.get(self.model)
        if previous is not None and previous is not self:
            previous.stop()
        self._attach()
        _STARTED[self.model] = self
        return self

    def _attach(self) -> None:
        self._detach()
        self._once.attach()
        for name, module in self._modules.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))

    def _detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._once.detach()

    def stop(self) -> None:
        """Remove every hook this recorder attached. Safe to call twice."""
        self._detach()
        if _STARTED.get(self.model) is self:
            del _STARTED[self.model]

    def _hook(self, name: str):
        def hook(module, inputs, output):
            self._once.ran(name)
            out = output.detach()
            if self.device is not None:
                out = out.to(self.device)
            self._chunks[name].append(out.float().clone())
        return hook

    @property
    def activations(self) -> dict[str, torch.Tensor]:
        """``{layer name: outputs concatenated over the recorded batches}`` (empty layers left out)."""
        return {n: torch.cat(c) for n, c in self._chunks.items() if c}


def record_batch(model: nn.Module, x: torch.Tensor, layers: Sequence[str] | None = None,
                 device: torch.device | str | None = "cpu") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One forward pass of the float batch ``x`` (``N x C x H x W``, as the model reads it) in eval mode,
    without gradients: ``(the model's output, {layer: its output on device})``. The model is left in the
    mode it was in."""
    with evaluating(model), ActivationRecorder(model, layers, device=device) as rec, torch.no_grad():
        out = model(x.to(device_of(model)))
    return out, rec.activations


class ActivationHistograms:
    """Histograms of what named layers output at every training step: fastai's activation statistics and
    their "colorful dimension" picture (Howard & Gugger, *Deep Learning for Coders*, chapter 13).

    ``ActivationHistograms(model, layers, bins=40, high=10.0)``: while it records (a ``with`` block, whose
    end removes the hooks, also when training raises), each forward pass *in training mode* adds, per layer,
    the histogram of its outputs over ``bins`` equal bins from 0 to ``high`` (values above go in the last
    bin, below 0 in the first: these are ReLU outputs), their mean and standard deviation, and the share
    of exact zeros. Passes in eval mode (validation) are not counted. ``histograms[name]`` is a
    ``steps x bins`` tensor of counts, ``means[name]``, ``stds[name]`` and ``zeros[name]`` lists with one
    value per step."""

    def __init__(self, model: nn.Module, layers: Sequence[str], bins: int = 40, high: float = 10.0):
        self.model, self.layers = model, check_layer_names(model, layers)
        self.bins, self.high = bins, high
        self._rows: dict[str, list[torch.Tensor]] = {n: [] for n in self.layers}
        self.means: dict[str, list[float]] = {n: [] for n in self.layers}
        self.stds: dict[str, list[float]] = {n: [] for n in self.layers}
        self.zeros: dict[str, list[float]] = {n: [] for n in self.layers}
        self._handles: list = []
        self._once = _OncePerPass(model, {n: find_layer(model, n) for n in self.layers})

    def __enter__(self) -> "ActivationHistograms":
        if self._handles:
            raise RuntimeError("These ActivationHistograms are already recording: expected one with block at a "
                               "time.")
        self._once.attach()
        for name in self.layers:
            self._handles.append(find_layer(self.model, name).register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._once.detach()

    def _hook(self, name: str):
        def hook(module, inputs, output):
            self._once.ran(name)
            if not module.training:
                return
            out = output.detach().float()
            self._rows[name].append(torch.histc(out.clamp(0, self.high), self.bins, 0, self.high).cpu())
            self.means[name].append(float(out.mean()))
            self.stds[name].append(float(out.std()))
            self.zeros[name].append(float((out == 0).float().mean()))
        return hook

    @property
    def histograms(self) -> dict[str, torch.Tensor]:
        """``{layer: steps x bins counts}`` (empty layers left out)."""
        return {n: torch.stack(r) for n, r in self._rows.items() if r}

"""The widget of lesson 08: pick a layer and a unit of a network, how strongly to regularize and how many
steps, press *make*, and watch the image made for that unit grow, with its activation after every step."""

from __future__ import annotations

import html
import time

import ipywidgets as W
import numpy as np
import torch

from .. import made_images, measure, viz
from ..layers import input_channels, layer_names
from .base import WidgetView


# The made image starts from noise this strong: from a faint, nearly grey start about half of a ReLU layer's units
# (AlexNet's conv1 among them) output 0 and get no gradient, and the image never changes.
START_NOISE = 0.5


class UnitExplorer(WidgetView):
    """``UnitExplorer(model, layers=None, size=64)``: controls for the layer (default: every activation with
    spatial maps, i.e. after a convolution), the unit (channel), the regularizer strength (0: none; 1: shifts of up
    to 4 px and a blur of sigma 1 after every step), the number of steps and the seed; *make* runs
    :func:`made_images.maximize` on the centre unit with a progress bar, then shows the image and the curve
    of the activation. A control change never raises: what cannot be done is said in the widget."""

    def __init__(self, model: torch.nn.Module, layers=None, size: int = 64, channels: int | None = None):
        self.model, self.size, self.channels = model, size, channels
        self._widths = {}
        names = [n for n in layer_names(model, (torch.nn.ReLU, torch.nn.Tanh)) if len(self._shape(n)) == 3]
        self.layers = list(layers) if layers is not None else names
        unknown = [n for n in self.layers if n not in dict(model.named_modules())]
        if unknown or not self.layers:
            raise KeyError(f"Unknown layer(s) {unknown or self.layers} for {type(model).__name__}: "
                           f"expected some of {names}.")
        self.layer = W.Dropdown(options=self.layers, value=self.layers[0], description="layer")
        self.unit = W.IntSlider(value=0, min=0, max=0, description="unit")
        self.strength = W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.1, description="regularize")
        self.steps = W.IntSlider(value=30, min=5, max=300, step=5, description="steps")
        self.seed = W.IntSlider(value=0, min=0, max=9, description="seed")
        self.make = W.Button(description="make", button_style="primary")
        self.bar = W.IntProgress(value=0, min=0, max=1, description="")
        self.view = W.Image(format="png")
        self.curve = W.Image(format="png")
        self.note = W.HTML()
        self.layer.observe(lambda _: self._layer_changed(), names="value")
        self.make.on_click(lambda _: self.update())
        self.widget = W.VBox([W.HBox([self.layer, self.unit, self.seed]),
                              W.HBox([self.strength, self.steps, self.make]),
                              self.bar, W.HBox([self.view, self.curve]), self.note])
        self.widget.add_class("unit-explorer")
        self._layer_changed()

    def _shape(self, layer: str) -> tuple:
        """``layer``'s output shape for one image of the widget's size (measured once on a gray image)."""
        if layer not in self._widths:
            channels = self.channels or input_channels(self.model)
            gray = torch.full((1, channels, self.size, self.size), 128, dtype=torch.uint8)
            self._widths[layer] = tuple(measure.record(self.model, gray, [layer])[layer].shape[1:])
        return self._widths[layer]

    def width(self, layer: str) -> int:
        """How many units (channels) ``layer`` has."""
        return self._shape(layer)[0]

    def _layer_changed(self) -> None:
        self.unit.max = self.width(self.layer.value) - 1
        self.note.value = f"{html.escape(self.layer.value)}: {self.unit.max + 1} units; press <b>make</b>."

    def settings(self) -> dict:
        """The regularizers of the current strength (see the class docstring)."""
        s = float(self.strength.value)
        return {"jitter": int(round(4 * s)), "blur": s}

    def update(self) -> None:
        """Make the image for the selected unit now (what *make* does), step by step with the progress bar."""
        self.bar.max, self.bar.value = int(self.steps.value), 0
        started = time.perf_counter()
        try:
            image, curve = made_images.maximize(self.model, self.layer.value, int(self.unit.value), size=self.size,
                                             steps=int(self.steps.value), seed=int(self.seed.value), lr=0.1,
                                             unit="center", channels=self.channels, noise=START_NOISE,
                                             on_step=lambda i, _: setattr(self.bar, "value", i), **self.settings())
        except (ValueError, KeyError, RuntimeError) as err:     # said in the widget, never raised at the learner
            self.note.value = f'<span class="error">{html.escape(str(err))}</span>'
            return
        self.bar.value = self.bar.max
        self.image, self.activations = image, curve
        shown = image.permute(1, 2, 0).numpy() if image.shape[0] == 3 else image[0].numpy()
        self.view.value = viz.to_png(np.clip(shown, 0, 1), max(1, 200 // self.size))
        self.curve.value = _sparkline(curve)
        ms = 1000 * (time.perf_counter() - started) / len(curve)
        self.note.value = (f'<div class="unit-numbers"><b>{html.escape(self.layer.value)}</b> unit {self.unit.value}: '
                           f'activation {curve[0]:.2f} → <b>{curve[-1]:.2f}</b> in {len(curve)} steps '
                           f'({ms:.0f} ms a step)</div>')


def _sparkline(values, width: int = 200, height: int = 80) -> bytes:
    """A small PNG of ``values`` as a line (the activation after each step)."""
    canvas = np.ones((height, width, 3))
    v = np.asarray(values, dtype=float)
    if len(v) > 1 and np.isfinite(v).all():
        xs = np.linspace(0, width - 1, len(v)).round().astype(int)
        span = (v.max() - v.min()) or 1.0
        ys = (height - 1 - (v - v.min()) / span * (height - 1)).round().astype(int)
        for (x0, y0), (x1, y1) in zip(zip(xs[:-1], ys[:-1]), zip(xs[1:], ys[1:])):
            n = max(abs(x1 - x0), abs(y1 - y0), 1)
            along_y = np.linspace(y0, y1, n + 1).round().astype(int)
            along_x = np.linspace(x0, x1, n + 1).round().astype(int)
            canvas[along_y, along_x] = (0.1, 0.3, 0.8)
    return viz.to_png(canvas)

"""Which input pixels one unit sees: its receptive field computed from the layer sizes, and the pixels its
gradient actually reaches."""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import torch

from .. import loader, receptive_fields, viz
from ..layers import record_batch
from .base import WidgetView


class ReceptiveFieldExplorer(WidgetView):
    """Which input pixels one unit sees: pick a layer and a unit; the square its receptive field
    covers (:func:`receptive_fields.field_box`, from the layer sizes) is drawn in red on the image, and
    the pixels its gradient actually reaches (:func:`receptive_fields.measured_field`) are tinted green.

    ``ReceptiveFieldExplorer(model, image, layers=None)``: ``image`` uint8 ``C x H x W`` (or
    ``1 x C x H x W``) at the size the model reads; ``layers`` default to every conv and pooling layer
    before the first linear layer.
    """

    def __init__(self, model: torch.nn.Module, image: torch.Tensor, layers=None):
        if torch.is_tensor(image) and image.dim() == 4 and len(image) == 1:
            image = image[0]
        if not torch.is_tensor(image) or image.dim() != 3:
            raise ValueError(f"Expected one image C x H x W, got {tuple(getattr(image, 'shape', ()))}.")
        loader.check_images(image[None], "image")
        self.model, self.image = model, image
        valid = receptive_fields.spatial_layer_names(model)
        names = valid if layers is None else list(layers)
        unknown = [n for n in names if n not in valid]
        if unknown or not names:
            raise KeyError(f"Layer(s) {unknown or names} have no receptive field to show: expected some of {valid}.")
        gen = torch.Generator().manual_seed(0)
        self._probe = torch.randn(4, *image.shape, generator=gen)
        _, acts = record_batch(model, self._probe[:1], names)
        self._sizes = {n: tuple(a.shape[-2:]) for n, a in acts.items()}
        self.layer = W.Dropdown(options=names, value=names[-1], description="layer")
        self.row = W.IntSlider(value=0, min=0, max=0, description="unit row")
        self.col = W.IntSlider(value=0, min=0, max=0, description="unit col")
        self.view = W.Image(format="png")
        self.numbers = W.HTML()
        self.layer.observe(self._layer_changed, names="value")
        for control in (self.row, self.col):
            control.observe(lambda _: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.layer, self.row, self.col]), W.HBox([self.view, self.numbers])])
        self.widget.add_class("receptive-field-explorer")
        self._layer_changed()

    def _layer_changed(self, _=None) -> None:
        h, w = self._sizes[self.layer.value]
        with self.row.hold_trait_notifications(), self.col.hold_trait_notifications():
            self.row.max, self.col.max = h - 1, w - 1
            self.row.value, self.col.value = h // 2, w // 2
        self.update()

    def field(self) -> tuple[int, int, int, int]:
        """The selected unit's receptive field as whole input pixels ``(top, left, bottom, right)``, inclusive
        (:func:`receptive_fields.field_box`; it may reach past the image's edge)."""
        return receptive_fields.field_box(self.model, self.layer.value, self.row.value, self.col.value)

    def measured(self) -> torch.Tensor:
        """Bool ``H x W``: the pixels the selected unit's gradient reaches (on random images)."""
        return receptive_fields.measured_field(self.model, self.layer.value, self._probe, self.row.value,
                                               self.col.value)

    def update(self) -> None:
        """Redraw the image with the square and the measured pixels, and the numbers."""
        top, left, bottom, right = self.field()
        size = bottom - top + 1
        reached = self.measured().numpy()
        img = self.image.permute(1, 2, 0).float().numpy() / 255
        img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
        shown = img * 0.6
        shown[reached] = shown[reached] * 0.5 + np.array([0.2, 0.8, 0.2]) * 0.5
        h, w = reached.shape
        rows, cols = np.clip([top, bottom], 0, h - 1), np.clip([left, right], 0, w - 1)
        red = np.array([1.0, 0.1, 0.1])
        for r in {int(rows[0]), int(rows[1])}:
            shown[r, cols[0]:cols[1] + 1] = red
        for c in {int(cols[0]), int(cols[1])}:
            shown[rows[0]:rows[1] + 1, c] = red
        self.view.value = viz.to_png(shown, max(1, 280 // max(h, w)))
        ys, xs = np.nonzero(reached)
        measured = (f"{ys.max() - ys.min() + 1} x {xs.max() - xs.min() + 1}" if len(ys) else "none")
        self.numbers.value = (f'<div class="field-numbers"><b>{html.escape(self.layer.value)}</b> unit '
                              f'({self.row.value}, {self.col.value})<br>'
                              f'receptive field <b>{size} x {right - left + 1}</b> '
                              f'px from rows {top}..{bottom}, cols {left}..{right}<br>'
                              f'gradient reaches <b>{measured}</b> px inside the image</div>')

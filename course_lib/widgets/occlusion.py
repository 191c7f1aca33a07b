"""Slide a grey square over an image and watch the class probability fall (Zeiler & Fergus 2014), beside
the whole occlusion map."""

from __future__ import annotations

import html

import ipywidgets as W
import torch

from .. import attribution, loader, viz
from ..layers import device_of, evaluating
from .base import WidgetView


class OcclusionExplorer(WidgetView):
    """Slide a grey square over an image and watch the class probability (Zeiler & Fergus 2014).

    ``OcclusionExplorer(model, images, classes=None, window=None, mean=None, std=None)``: ``images``
    uint8 ``N x C x H x W``; ``classes`` the class names (default their numbers). Controls: image, the
    square's size and position, the class to follow (default: the network's answer). Left: the
    occluded image and the class probability with and without the square; right: the whole occlusion
    map (:func:`attribution.occlusion`) for this image, size and class, with the square outlined.
    """

    def __init__(self, model: torch.nn.Module, images: torch.Tensor, classes=None, window: int | None = None,
                 mean=None, std=None):
        loader.check_images(images, "OcclusionExplorer's images", allow_empty=False)
        self.model, self.images, self.mean, self.std = model, images, mean, std
        h, w = images.shape[-2:]
        with torch.no_grad():
            self._full = self._probs(loader.normalize(images, mean, std))
        self.classes = [str(c) for c in (classes if classes is not None else range(self._full.shape[1]))]
        if len(self.classes) != self._full.shape[1]:
            raise ValueError(f"Expected {self._full.shape[1]} class names, got {len(self.classes)}.")
        side = min(h, w)
        window = max(2, side // 4) if window is None else window
        if not 1 <= window <= side:
            raise ValueError(f"window must be between 1 and {side} pixels, got {window}.")
        self.image = W.IntSlider(value=0, min=0, max=len(images) - 1, description="image",
                                 layout=W.Layout(display=None if len(images) > 1 else "none"))
        self.window = W.IntSlider(value=window, min=1, max=side, description="square")
        self.row = W.IntSlider(value=0, min=0, max=h - window, description="row")
        self.col = W.IntSlider(value=0, min=0, max=w - window, description="col")
        self.target = W.Dropdown(options=[("the network's answer", -1)] + [(c, i) for i, c in enumerate(self.classes)],
                                 value=-1, description="class")
        self.occluded_view = W.Image(format="png")
        self.map_view = W.Image(format="png")
        self.numbers = W.HTML()
        self._maps: dict = {}
        self.window.observe(self._window_changed, names="value")
        for control in (self.image, self.row, self.col, self.target):
            control.observe(lambda _: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.image, self.target]), W.HBox([self.window, self.row, self.col]),
                              W.HBox([W.VBox([W.HTML("<b>occluded</b>"), self.occluded_view, self.numbers]),
                                      W.VBox([W.HTML("<b>probability drop, everywhere</b>"), self.map_view])])])
        self.widget.add_class("occlusion-explorer")
        self.update()

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        with evaluating(self.model), torch.no_grad():
            return self.model(x.to(device_of(self.model))).float().softmax(1).cpu()

    def _window_changed(self, _=None) -> None:
        h, w = self.images.shape[-2:]
        # Both ranges before any redraw, so that no slider points outside the image.
        with self.row.hold_trait_notifications(), self.col.hold_trait_notifications():
            self.row.max, self.col.max = h - self.window.value, w - self.window.value
        self.update()

    def target_class(self) -> int:
        """The class followed: the chosen one, or the network's answer on the whole image."""
        return int(self._full[self.image.value].argmax()) if self.target.value < 0 else self.target.value

    def occluded(self) -> torch.Tensor:
        """The selected image with the square painted grey (0 after normalization): float ``1 x C x H x W``."""
        x = loader.normalize(self.images[self.image.value:self.image.value + 1], self.mean, self.std)
        r, c, k = self.row.value, self.col.value, self.window.value
        x[..., r:r + k, c:c + k] = 0.0
        return x

    def occlusion_map(self) -> torch.Tensor:
        """The occlusion map ``H x W`` of the selected image, square size and class (computed once)."""
        key = (self.image.value, self.window.value, self.target_class())
        if key not in self._maps:
            x = loader.normalize(self.images[key[0]:key[0] + 1], self.mean, self.std)
            stride = max(1, self.window.value // 3)
            self._maps[key] = attribution.occlusion(self.model, x, key[2], self.window.value, stride)[0]
        return self._maps[key]

    def update(self) -> None:
        """Redraw the occluded image, the probabilities and the map with the square on it."""
        t = self.target_class()
        x = self.occluded()
        p_now = float(self._probs(x)[0, t])
        p_full = float(self._full[self.image.value, t])
        picture = self.images[self.image.value].permute(1, 2, 0).numpy()
        shown = picture.copy()
        r, c, k = self.row.value, self.col.value, self.window.value
        shown[r:r + k, c:c + k] = 128
        scale = max(1, 224 // max(picture.shape[:2]))
        self.occluded_view.value = viz.to_png(shown.squeeze(-1) if shown.shape[-1] == 1 else shown, scale)
        heat = viz.overlay(picture.squeeze(-1) if picture.shape[-1] == 1 else picture,
                           self.occlusion_map().numpy(), alpha=0.6)
        heat[r:r + k, [c, min(c + k, heat.shape[1]) - 1]] = (1, 1, 1)
        heat[[r, min(r + k, heat.shape[0]) - 1], c:c + k] = (1, 1, 1)
        self.map_view.value = viz.to_png(heat, scale)
        name = html.escape(self.classes[t])
        self.numbers.value = (f'<div class="occlusion-numbers">P({name}) <b>{p_now:.3f}</b> with the square, '
                              f'{p_full:.3f} without: change <b>{p_now - p_full:+.3f}</b></div>')



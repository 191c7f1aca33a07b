"""Explorers of a trained network, or of its training history: feature maps (``ActivationExplorer``) and
filters (``FilterExplorer``), with an epoch slider over ``fit``'s snapshots. The widgets that probe a
network with an input you change are beside it: :mod:`.digit_canvas`, :mod:`.occlusion`,
:mod:`.receptive_field`.

Pictures go to the browser as PNG bytes; ``update()`` does one full refresh synchronously, which is what
the benchmarks time.
"""

from __future__ import annotations

import html
import math

import ipywidgets as W
import torch

from .. import loader, measure, viz
from ..layers import conv_layer_names
from .base import WidgetView


PAGE_SIZE = 64  # maps or filters on one page: more would not be readable


def _snapshots_of(source):
    """``(model or None, snapshots list)`` from a model or a History with snapshots."""
    if isinstance(source, torch.nn.Module):
        return source, []
    snapshots = getattr(source, "snapshots", None)
    if not snapshots:
        raise ValueError("Expected a model or a History with snapshots "
                         "(train with fit(..., snapshot_every=k, probe=images)).")
    return None, snapshots


class _Explorer(WidgetView):
    """What both explorers share: ``frames`` (one per snapshot epoch) and an epoch slider over them."""

    frames: list[dict]

    def _epoch_slider(self) -> W.SelectionSlider:
        labels = [_when(f) for f in self.frames]
        # index=, not value=: with one option, value=0 equals the trait's default, so ipywidgets never
        # sets the label and the slider would read '' instead of '0'.
        return W.SelectionSlider(options=[(label, i) for i, label in enumerate(labels)], index=len(labels) - 1,
                                 description="epoch", layout=W.Layout(display=None if len(labels) > 1 else "none"))

    def _frame(self) -> dict:
        return self.frames[self.epoch.value]


def _when(frame: dict) -> str:
    """A snapshot's place in training: ``"2"`` (epochs), or ``"0.05 (step 50)"`` for one taken inside an epoch."""
    epoch, step = frame["epoch"], frame.get("step")
    if step is None or float(epoch).is_integer():
        return f"{epoch:g}"
    return f"{epoch:.2f} (step {step})"


def _stats_html(name: str, acts: torch.Tensor) -> str:
    dead = measure.dead_filters(acts)
    return (f'<div class="explorer-stats"><b>{html.escape(name)}</b> {tuple(acts.shape[1:])}<br>'
            f'sparsity <b>{measure.sparsity(acts):.2f}</b> (share of zeros)<br>'
            f'dead <b>{int(dead.sum())}/{len(dead)}</b> channels (red frame)</div>')


def _page_slider() -> W.IntSlider:
    return W.IntSlider(value=0, min=0, max=0, description="page", layout=W.Layout(display="none"))


def _set_pages(slider: W.IntSlider, count: int) -> None:
    pages = max(1, math.ceil(count / PAGE_SIZE))
    slider.max = pages - 1
    slider.layout.display = None if pages > 1 else "none"


class ActivationExplorer(_Explorer):
    """Feature maps of every layer for every probe image, across training.

    ``ActivationExplorer(model_or_history, images, layers=None)``: ``images`` is a uint8 batch
    ``N x C x H x W``. With a model, its activations on ``images`` are recorded once. With a History
    trained with ``snapshot_every``/``probe``, ``images`` must be that probe batch and an epoch slider
    scrubs through the snapshots. Controls: layer, image, epoch, page (layers with more than 64
    channels). Beside the maps: the layer's sparsity and dead channels on the whole batch.
    """

    def __init__(self, source, images: torch.Tensor, layers=None, mean=None, std=None):
        model, snapshots = _snapshots_of(source)
        loader.check_images(images, "probe images", allow_empty=False)
        if snapshots and not snapshots[0].get("activations"):
            raise ValueError("These snapshots hold no activations: train with fit(..., snapshot_every=k, "
                             "probe=images) so that each snapshot records the probe's activations.")
        self.images = images
        if model is not None:
            self.frames = [{"epoch": 0, "activations": measure.record(model, images, layers, mean, std)}]
        else:
            self.frames = snapshots
            n = len(next(iter(snapshots[0]["activations"].values())))
            if n != len(images):
                raise ValueError(f"The snapshots were recorded on {n} probe images but {len(images)} were "
                                 "given: pass the same probe batch that fit() used.")
        names = [n for n, a in self.frames[0]["activations"].items() if a.dim() in (2, 4)]
        if layers is not None:
            names = [n for n in layers if n in names]
        if not names:
            raise ValueError("No recorded layer to show.")
        self.layer = W.Dropdown(options=names, value=names[0], description="layer")
        self.image = W.IntSlider(value=0, min=0, max=len(images) - 1, description="image")
        self.epoch = self._epoch_slider()
        self.page = _page_slider()
        self.input_view = W.Image(format="png")
        self.maps_view = W.Image(format="png")
        self.stats = W.HTML()
        for control in (self.layer, self.image, self.epoch, self.page):
            control.observe(lambda _: self.update(), names="value")
        self.widget = W.VBox([
            W.HBox([self.layer, self.epoch]), W.HBox([self.image, self.page]),
            W.HBox([W.VBox([W.HTML("<b>input</b>"), self.input_view]),
                    W.VBox([W.HTML("<b>feature maps</b>"), self.maps_view]), self.stats]),
        ])
        self.update()

    def current(self) -> torch.Tensor:
        """The selected layer's activations (whole batch) at the selected epoch."""
        return self._frame()["activations"][self.layer.value]

    def update(self) -> None:
        """Redraw the input, the maps of the selected image, and the layer's numbers."""
        acts = self.current()
        maps = acts[self.image.value]
        if maps.dim() == 1:  # a linear layer: units as 1x1 maps
            maps = maps[:, None, None]
        _set_pages(self.page, maps.shape[0])
        start = self.page.value * PAGE_SIZE
        dead = measure.dead_filters(acts)[start:start + PAGE_SIZE]
        grid = viz.map_grid(maps[start:start + PAGE_SIZE], dead=dead)
        side = max(grid.shape[:2])
        img = self.images[self.image.value]
        self.input_view.value = viz.to_png(img.permute(1, 2, 0).squeeze(-1).numpy(), max(1, 96 // img.shape[-1]))
        self.maps_view.value = viz.to_png(grid, max(1, 320 // side))
        self.stats.value = _stats_html(self.layer.value, acts)


class FilterExplorer(_Explorer):
    """The filters of every conv layer, across training, with each filter's smoothness.

    ``FilterExplorer(model_or_history, layers=None)``: with a History trained with snapshots, an
    epoch slider scrubs through training. Controls: layer, epoch, normalization (per filter or one
    scale for the layer), page (more than 64 filters). 3-channel first-layer filters are shown in
    color, with each filter's color score; every filter's smoothness is listed beside the grid.
    """

    def __init__(self, source, layers=None):
        model, snapshots = _snapshots_of(source)
        if model is not None:
            names = conv_layer_names(model)
            self.frames = [{"epoch": 0, "weights": {n: measure.conv_weights(model, n) for n in names}}]
        else:
            first = snapshots[0]["state"]
            names = [k[:-7] for k in first if k.endswith(".weight") and first[k].dim() == 4]
            self.frames = [{"epoch": s["epoch"],
                            "weights": {n: measure.weights_from_state(s["state"], n) for n in names}}
                           for s in snapshots]
        if layers is not None:
            unknown = [n for n in layers if n not in names]
            if unknown:
                raise KeyError(f"Unknown conv layer(s) {unknown}: expected some of {names}.")
            names = list(layers)
        if not names:
            raise ValueError("This model has no conv layer to show.")
        self.layer = W.Dropdown(options=names, value=names[0], description="layer")
        self.epoch = self._epoch_slider()
        self.normalize = W.ToggleButtons(options=[("per filter", "per_filter"), ("one scale", "global")],
                                         value="per_filter", description="scale")
        self.page = _page_slider()
        self.grid_view = W.Image(format="png")
        self.numbers = W.HTML()
        for control in (self.layer, self.epoch, self.normalize, self.page):
            control.observe(lambda _: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.layer, self.epoch]), W.HBox([self.normalize, self.page]),
                              W.HBox([self.grid_view, self.numbers])])
        self.update()

    def current(self) -> torch.Tensor:
        """The selected layer's weights ``C_out x C_in x k x k`` at the selected epoch."""
        return self._frame()["weights"][self.layer.value]

    def update(self) -> None:
        """Redraw the filter grid and the per-filter numbers."""
        w = self.current()
        _set_pages(self.page, w.shape[0])
        start = self.page.value * PAGE_SIZE
        page = w[start:start + PAGE_SIZE]
        grid = viz.filter_grid(page, normalize=self.normalize.value)
        self.grid_view.value = viz.to_png(grid, max(1, 360 // max(grid.shape[:2])))
        smooth = measure.filter_smoothness(page)
        rows = [f"<tr><td>{start + i}</td><td>{s:.2f}</td>" for i, s in enumerate(smooth.tolist())]
        header = "<tr><th>filter</th><th>smoothness</th>"
        if w.shape[1] == 3:
            header += "<th>color</th>"
            rows = [r + f"<td>{c:.2f}</td>" for r, c in zip(rows, measure.color_score(page).tolist())]
        self.numbers.value = (f'<div class="explorer-stats" style="max-height:360px;overflow:auto;font-size:11px">'
                              f"mean smoothness <b>{smooth.mean():.3f}</b>"
                              f"<table>{header}</tr>{''.join(r + '</tr>' for r in rows)}</table></div>")

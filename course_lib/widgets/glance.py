"""The whole network at a glance, live: :func:`viz.glance`'s columns — the input, every layer's maps, the
flattened vector, the scores and the probabilities — redrawn as the input or the weights change. It follows
lesson 02's canvas while the learner draws, and ``fit`` while the network trains (from its snapshots), so
the columns can be watched going from blobby to sparse, as in Karpathy's ConvNetJS demo; after training a
slider goes back through the snapshots.

Pictures go to the browser as PNG bytes; ``update()`` does one full refresh synchronously, which is what
the benchmarks time.
"""

from __future__ import annotations

import html
import io

import ipywidgets as W
import torch

from .. import layers, viz
from .base import WidgetView, probability_bars

HEIGHT = 240   # pixels of the tallest column


def _png(column: viz.Column) -> bytes:
    picture = viz.column_picture(column, HEIGHT)
    return viz.to_png(picture, max(1, min(4, HEIGHT // max(1, picture.shape[0]))))


class GlanceView(WidgetView):
    """One input through every layer of a network, left to right, redrawn live.

    ``GlanceView(model, image, class_names=None, mean=None, std=None, most_maps=8)``: ``image`` is uint8
    ``C x H x W`` (or ``1 x C x H x W``) as the network reads it after normalization with ``mean``/``std``
    (see :func:`viz.flow`). ``show(image)`` draws another input; ``follow(canvas)`` redraws with what a
    :class:`DigitCanvas` reads each time it changes; ``add_snapshot`` is ``fit``'s ``on_snapshot`` hook:
    the view redraws with each snapshot's weights as training goes, and its slider (``slider``) goes back
    through them afterwards. The model itself is never changed: snapshots are drawn with a copy of it.
    """

    def __init__(self, model: torch.nn.Module, image: torch.Tensor, class_names=None, mean=None, std=None,
                 most_maps: int = 8):
        self.model, self.mean, self.std, self.most_maps = model, mean, std, most_maps
        self.snapshots: list[dict] = []
        self._copy: torch.nn.Module | None = None
        self.image = self._checked(image)
        self.columns = viz.flow(model, self.image, mean, std, most_maps=most_maps)
        probs = next((c for c in self.columns if c.kind == "probabilities"), None)
        self.class_names = viz.check_class_names(class_names, probs.total if probs is not None else 0)
        self.views: list[W.Image] = []
        self.titles: list[W.HTML] = []
        self.columns_box = W.HBox(layout=W.Layout(align_items="center"))
        self.scores = W.HTML()
        self.answer = W.HTML()
        self.slider = W.SelectionSlider(options=[("now", -1)], value=-1, description="snapshot",
                                          continuous_update=True, layout=W.Layout(width="420px", display="none"))
        self._quiet = False       # True while the slider's options are replaced: one redraw, not two
        self.slider.observe(lambda change: None if self._quiet else self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.columns_box, W.VBox([self.answer, self.scores],
                                                                 layout=W.Layout(min_width="240px"))],
                                     layout=W.Layout(align_items="center", overflow="auto")), self.slider],
                             layout=W.Layout(border="1px solid #ccc", padding="4px"))
        self.widget.add_class("glance-view")
        self.update()

    @staticmethod
    def _checked(image: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(image)
        x = x[None] if x.dim() == 3 else x
        if x.dim() != 4 or len(x) != 1 or x.dtype != torch.uint8:
            raise ValueError(f"GlanceView draws one uint8 image C x H x W (or 1 x C x H x W), got {x.dtype} "
                             f"of shape {tuple(x.shape)}.")
        return x.cpu()

    # --- what to draw ----------------------------------------------------------------------------
    def show(self, image: torch.Tensor | None = None) -> None:
        """Draw ``image`` (default: the one shown) through the network as it is now."""
        if image is not None:
            checked = self._checked(image)
            if checked.shape != self.image.shape:
                raise ValueError(f"This view draws images of shape {tuple(self.image.shape[1:])}, got "
                                 f"{tuple(checked.shape[1:])}.")
            self.image = checked
        self.update()

    def follow(self, canvas) -> "GlanceView":
        """Redraw with what ``canvas`` (a :class:`DigitCanvas`) reads, each time it changes. Returns self."""
        canvas.on_change(self.show)
        self.show(canvas.input())
        return self

    def add_snapshot(self, snapshot: dict) -> None:
        """``fit``'s ``on_snapshot`` hook: keep ``snapshot`` (``{"epoch", "step", "state", ...}``) and, when
        the slider was on the latest one (or on "now"), draw with its weights."""
        if not isinstance(snapshot, dict) or "state" not in snapshot:
            raise ValueError("Expected one of fit's snapshots: a dict with the weights under 'state'.")
        following = self.slider.value in (-1, len(self.snapshots) - 1)
        self.snapshots.append(snapshot)
        options = [(f"step {s.get('step', '?')} (epoch {float(s.get('epoch', 0)):.2f})", i)
                   for i, s in enumerate(self.snapshots)] + [("now", -1)]
        target = len(self.snapshots) - 1 if following else self.slider.value
        self._quiet = True
        try:
            self.slider.options = options
            self.slider.value = target
        finally:
            self._quiet = False
        self.slider.layout.display = None
        self.update()

    def _network(self) -> torch.nn.Module:
        """The network to draw: the model now, or a copy of it holding the chosen snapshot's weights."""
        index = self.slider.value
        if index == -1 or not self.snapshots:
            return self.model
        if self._copy is None:
            self._copy = layers.copy_without_hooks(self.model).cpu()
        self._copy.load_state_dict(self.snapshots[index]["state"])
        return self._copy

    def snapshot(self) -> bytes:
        """PNG bytes of :func:`viz.glance`'s figure of what the view shows now, with its titles and bars (the
        static picture a page without a kernel shows)."""
        import matplotlib.pyplot as plt

        figure = viz.glance(None, self.image, self.class_names, columns=self.columns)
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=72, bbox_inches="tight")
        plt.close(figure)
        return out.getvalue()

    # --- drawing ---------------------------------------------------------------------------------
    def _one_view_a_column(self, count: int) -> None:
        """``count`` picture views with their titles (a network that grew or shrank since the last draw)."""
        if count == len(self.views):
            return
        self.views, self.titles = self.views[:count], self.titles[:count]
        while len(self.views) < count:
            self.views.append(W.Image(format="png"))
            self.titles.append(W.HTML())
        self.columns_box.children = [W.VBox([t, v], layout=W.Layout(align_items="center", margin="0 6px"))
                                     for t, v in zip(self.titles, self.views)]

    def update(self) -> None:
        """Redraw every column for the image and the chosen weights."""
        self.columns = viz.flow(self._network(), self.image, self.mean, self.std, most_maps=self.most_maps)
        pictures = [c for c in self.columns if c.kind not in ("logits", "probabilities")]
        self._one_view_a_column(len(pictures))
        for column, view, title in zip(pictures, self.views, self.titles):
            view.value = _png(column)
            more = f" ({len(column.shown)} of {column.total})" if len(column.shown) < column.total else ""
            shape = "×".join(str(s) for s in column.values.shape[-2:]) if column.kind != "vector" else \
                f"{column.total}"
            title.value = (f'<div class="glance-title" style="font-size:11px;text-align:center">'
                           f'<b>{html.escape(column.name)}</b><br>{shape}{more}</div>')
        probs = next((c for c in self.columns if c.kind == "probabilities"), None)
        if probs is None or not torch.isfinite(probs.values).all():
            why = "it has no Linear layer to give class scores" if probs is None else \
                "its probabilities are not finite numbers (NaN or infinite weights or inputs)"
            self.answer.value = f'<div class="glance-answer" style="font-size:12px">no answer: {why}</div>'
            self.scores.value = ""
            return
        names = [self.class_names[i] if self.class_names is not None and i < len(self.class_names) else str(i)
                 for i in probs.shown]
        best = int(probs.values.argmax())
        self.answer.value = (f'<div class="glance-answer" style="font-size:12px">reads '
                             f'<b class="glance-prediction">{html.escape(names[best])}</b> '
                             f'({100 * float(probs.values[best]):.1f} %)</div>')
        self.scores.value = probability_bars(probs.values, names)

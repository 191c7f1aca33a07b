"""Draw a digit with the mouse and watch LeNet-1 read it: LeCun et al.'s 1993 demo, with the network's
feature maps following the pen.

Pictures go to the browser as PNG bytes; ``update()`` does one full refresh synchronously, which is what
the benchmarks time.
"""

from __future__ import annotations

import html
import time

import ipywidgets as W
import numpy as np
import torch

from .. import augment, loader, viz
from ..layers import check_layer_names, record_batch
from .base import WidgetView, probability_bars


def _blank_png(side: int = 28, scale: int = 4) -> bytes:
    return viz.to_png(np.zeros((side, side), np.uint8), scale)


def from_drawing(ink: np.ndarray) -> torch.Tensor:
    """A drawn digit prepared the way MNIST's digits were (LeCun et al. 1998): ``ink`` is an ``H x W``
    array, 0 for paper and up to 1 (or 255) for ink. Its bounding box is scaled to fit 20 x 20 keeping
    the aspect ratio (with anti-aliasing), and placed in a 28 x 28 frame with its centre of mass at the
    centre. Returns uint8 ``1 x 1 x 28 x 28`` (all zeros for an empty drawing)."""
    ink = np.asarray(ink, dtype=np.float32)
    if ink.ndim != 2:
        raise ValueError(f"Expected a drawing H x W, got shape {ink.shape}.")
    if not np.isfinite(ink).all():
        raise ValueError("Expected finite ink (0 for paper up to 1 or 255), got NaN or infinite values.")
    if ink.max() > 1:
        ink = ink / 255.0
    out = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    rows, cols = np.nonzero(ink > 0.05)
    if len(rows) == 0:
        return out
    box = torch.from_numpy(np.ascontiguousarray(ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]))
    scale = 20 / max(box.shape)
    h, w = max(1, round(box.shape[0] * scale)), max(1, round(box.shape[1] * scale))
    small = torch.nn.functional.interpolate(box[None, None], size=(h, w), mode="bilinear",
                                            antialias=True, align_corners=False)[0, 0].clamp(0, 1)
    mass = small.sum().clamp_min(1e-6)
    cy = (small.sum(1) * torch.arange(h)).sum() / mass
    cx = (small.sum(0) * torch.arange(w)).sum() / mass
    top = int(np.clip(round(14 - 0.5 - float(cy)), 0, 28 - h))
    left = int(np.clip(round(14 - 0.5 - float(cx)), 0, 28 - w))
    out[0, 0, top:top + h, left:left + w] = (small * 255).round().to(torch.uint8)
    return out


class DigitCanvas(WidgetView):
    """Draw a digit with the mouse and watch LeNet-1 read it: LeCun et al.'s 1993 demo.

    ``DigitCanvas(model, layers=("act1", "act2"), mean=None, std=None)``: ``model`` reads ``N x 1 x 28
    x 28`` normalized digits. The drawing is prepared as MNIST's digits were
    (:func:`from_drawing`); beside it: the 28 x 28 input the network reads, its answer, the ten
    class probabilities and the feature maps of ``layers``, refreshed while you draw. Buttons clear the
    canvas, shift the input by 2 pixels and add noise, to see what the answer survives.
    ``stroke(points)`` draws from code (tests, demos).
    """

    SIZE = 280    # canvas pixels: 10 per MNIST pixel
    BRUSH = 22    # a pen about 2 MNIST pixels wide once the digit is scaled to 20 x 20
    STEP = 2      # pixels per shift click
    MAX_SHIFT = 8
    NOISE_STEP, MAX_NOISE = 0.15, 0.6
    LIVE_EVERY_S = 0.08  # refresh at most this often while the pen moves (and always when it lifts)

    def __init__(self, model: torch.nn.Module, layers=("act1", "act2"), mean=None, std=None):
        from ipycanvas import Canvas

        self.model, self.layers, self.mean, self.std = model, check_layer_names(model, layers), mean, std
        self.ink = np.zeros((self.SIZE, self.SIZE), np.float32)
        self.shift = [0, 0]
        self.noise = 0.0
        self._pattern = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        self._pen: tuple[float, float] | None = None
        self._last_refresh = 0.0
        self._drawing = from_drawing(self.ink)
        self._listeners: list = []

        self.canvas = Canvas(width=self.SIZE, height=self.SIZE,
                             layout=W.Layout(width=f"{self.SIZE}px", height=f"{self.SIZE}px"))
        self.canvas.on_mouse_down(self._down)
        self.canvas.on_mouse_move(self._move)
        self.canvas.on_mouse_up(self._up)
        self.canvas.on_mouse_out(self._up)
        self._paint_background()

        def button(label, tip, action):
            b = W.Button(description=label, tooltip=tip, layout=W.Layout(width="auto"))
            b.on_click(lambda _: action())
            return b

        self.buttons = {
            "clear": button("clear", "erase the drawing", self.clear),
            "left": button("◀", "shift the input 2 pixels left", lambda: self.move(-self.STEP, 0)),
            "right": button("▶", "shift the input 2 pixels right", lambda: self.move(self.STEP, 0)),
            "up": button("▲", "shift the input 2 pixels up", lambda: self.move(0, -self.STEP)),
            "down": button("▼", "shift the input 2 pixels down", lambda: self.move(0, self.STEP)),
            "noise": button("+ noise", "add Gaussian noise to the input", self.add_noise),
            "reset": button("no shift, no noise", "undo the shifts and the noise", self.reset),
        }
        self.input_view = W.Image(format="png")
        self.answer = W.HTML()
        self.note = W.HTML()      # says when a listener (on_change) was dropped
        self.probs = W.HTML()
        self.map_views = {n: W.Image(format="png") for n in self.layers}
        maps = [W.VBox([W.HTML(f"<b>{html.escape(n)}</b>"), v]) for n, v in self.map_views.items()]
        self.widget = W.VBox([
            W.HBox([W.VBox([self.canvas, W.HBox(list(self.buttons.values())[:5]),
                            W.HBox(list(self.buttons.values())[5:])]),
                    W.VBox([W.HTML("<b>what LeNet-1 reads</b>"), self.input_view, self.answer, self.probs,
                              self.note])]),
            W.HBox(maps)], layout=W.Layout(border="1px solid #ccc", padding="4px"))
        self.widget.add_class("digit-canvas")
        self.update()

    # --- drawing -------------------------------------------------------------------------------
    def _paint_background(self) -> None:
        self.canvas.fill_style = "black"
        self.canvas.fill_rect(0, 0, self.SIZE, self.SIZE)
        self.canvas.stroke_style = self.canvas.fill_style = "white"
        self.canvas.line_width = self.BRUSH
        self.canvas.line_cap = "round"

    def _paint(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """Ink the segment into our own raster (what the network reads) and onto the canvas."""
        r = self.BRUSH / 2
        top, bottom = int(max(0, min(y0, y1) - r - 1)), int(min(self.SIZE, max(y0, y1) + r + 2))
        left, right = int(max(0, min(x0, x1) - r - 1)), int(min(self.SIZE, max(x0, x1) + r + 2))
        if top >= bottom or left >= right:
            return
        ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32) + 0.5
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        dist = np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))
        region = self.ink[top:bottom, left:right]
        np.maximum(region, np.clip(r + 0.5 - dist, 0, 1), out=region)
        if (x0, y0) == (x1, y1):
            self.canvas.fill_circle(x0, y0, r)
        else:
            self.canvas.stroke_line(x0, y0, x1, y1)

    def _down(self, x: float, y: float) -> None:
        self._pen = (float(x), float(y))
        self._paint(*self._pen, *self._pen)
        self._drawn()

    def _move(self, x: float, y: float) -> None:
        if self._pen is None:
            return
        self._paint(*self._pen, float(x), float(y))
        self._pen = (float(x), float(y))
        self._drawn(live=True)

    def _up(self, x: float, y: float) -> None:
        if self._pen is None:
            return
        self._pen = None
        self._drawn()

    def _drawn(self, live: bool = False) -> None:
        if live and time.perf_counter() - self._last_refresh < self.LIVE_EVERY_S:
            return
        self._drawing = from_drawing(self.ink)
        self.update()

    def stroke(self, points) -> None:
        """Draw one stroke through ``points`` ``[(x, y), ...]`` in canvas pixels (0..280), as the mouse would."""
        points = [(float(x), float(y)) for x, y in points]
        if not points:
            return
        self._down(*points[0])
        for p in points[1:]:
            self._move(*p)
        self._up(*points[-1])

    # --- buttons -------------------------------------------------------------------------------
    def clear(self) -> None:
        """Erase the drawing (the shift and noise stay)."""
        self.ink[:] = 0
        self._pen = None
        self._paint_background()
        self._drawing = from_drawing(self.ink)
        self.update()

    def move(self, dx: int, dy: int) -> None:
        """Shift the input by ``(dx, dy)`` more pixels (at most 8 each way)."""
        self.shift = [int(np.clip(self.shift[0] + dx, -self.MAX_SHIFT, self.MAX_SHIFT)),
                      int(np.clip(self.shift[1] + dy, -self.MAX_SHIFT, self.MAX_SHIFT))]
        self.update()

    def add_noise(self) -> None:
        """Add Gaussian noise (0.15 of full brightness more each click, up to 0.6)."""
        self.noise = round(min(self.noise + self.NOISE_STEP, self.MAX_NOISE), 2)
        self.update()

    def reset(self) -> None:
        """Undo the shifts and the noise."""
        self.shift, self.noise = [0, 0], 0.0
        self.update()

    def on_change(self, callback) -> None:
        """Call ``callback(input)`` after every refresh with what the network reads now (uint8 ``1 x 1 x 28 x
        28``): how a :class:`GlanceView` follows the pen. A callback that raises is dropped with a one-line
        message instead of breaking the drawing."""
        self._listeners.append(callback)

    def _tell(self) -> None:
        for callback in list(self._listeners):
            try:
                callback(self.input())
            except Exception as err:  # noqa: BLE001 — the learner's callback must not break the canvas
                self._listeners.remove(callback)
                who = html.escape(getattr(callback, "__name__", "a listener"))
                self.note.value = (f'<div class="digit-note">stopped telling {who}: '
                                   f'{html.escape(type(err).__name__)}: {html.escape(str(err)[:120])}</div>')

    # --- what the network sees ---------------------------------------------------------------------
    def input(self) -> torch.Tensor:
        """The digit as the network reads it: uint8 ``1 x 1 x 28 x 28`` (shifted, with noise)."""
        x = augment.shift(self._drawing, *self.shift).float()
        if self.noise:
            x = x + self.noise * 255 * self._pattern
        return x.clamp(0, 255).round().to(torch.uint8)

    def empty(self) -> bool:
        return not bool(self._drawing.any())

    def probabilities(self) -> torch.Tensor:
        """The network's 10 class probabilities for :meth:`input` (float32 on the CPU)."""
        return self._read()[0]

    def _read(self) -> tuple[torch.Tensor, dict]:
        logits, acts = record_batch(self.model, loader.normalize(self.input(), self.mean, self.std), self.layers)
        return logits.float().softmax(1)[0].cpu(), acts

    def update(self) -> None:
        """Redraw the input, the answer, the probabilities and the feature maps."""
        self._last_refresh = time.perf_counter()
        x = self.input()[0, 0].numpy()
        self.input_view.value = viz.to_png(x, 4)
        extra = []
        if self.shift != [0, 0]:
            extra.append(f"shifted {self.shift[0]:+d}, {self.shift[1]:+d} px")
        if self.noise:
            extra.append(f"noise {self.noise:.2f}")
        note = f' <span class="digit-note">({", ".join(extra)})</span>' if extra else ""
        if self.empty():
            self.answer.value = f'<div class="digit-answer">Draw a digit with the mouse.{note}</div>'
            self.probs.value = ""
            for v in self.map_views.values():
                v.value = _blank_png()
            self._tell()
            return
        probs, acts = self._read()
        best = int(probs.argmax())
        self.answer.value = (f'<div class="digit-answer">reads <b class="digit-prediction">{best}</b> '
                             f'({100 * probs[best]:.1f} %){note}</div>')
        self.probs.value = probability_bars(probs, [str(d) for d in range(len(probs))])
        for name, view in self.map_views.items():
            maps = acts[name][0]
            if maps.dim() == 1:
                maps = maps[:, None, None]
            grid = viz.map_grid(maps, ncols=min(6, len(maps)))
            view.value = viz.to_png(grid, max(1, 240 // max(grid.shape[:2])))
        self._tell()

"""Widgets that probe one trained network with an input you change: draw a digit and watch LeNet-1 read
it (``DigitCanvas``, LeCun et al.'s 1993 demo), hide a square of the input (``OcclusionExplorer``), and
pick a unit to see its receptive field, computed and measured (``ReceptiveFieldExplorer``).

Pictures go to the browser as PNG bytes; ``update()`` does one full refresh synchronously, which is what
the benchmarks time.
"""

from __future__ import annotations

import html
import time

import ipywidgets as W
import numpy as np
import torch

from . import augment, loader, measure, models, viz


def _probability_bars(probs: torch.Tensor, names: list[str]) -> str:
    rows = "".join(
        f'<div class="prob-row" style="display:flex;align-items:center;gap:4px;height:16px">'
        f'<span style="width:70px;text-align:right;overflow:hidden">{html.escape(n)}</span>'
        f'<span style="display:inline-block;height:11px;width:{120 * p:.0f}px;background:#3a7"></span>'
        f'<span>{100 * p:.1f} %</span></div>' for n, p in zip(names, probs.tolist()))
    return f'<div class="prob-bars" style="font-size:11px">{rows}</div>'


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


class DigitCanvas(viz.WidgetView):
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

        names = [n for n, _ in model.named_modules() if n]
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise KeyError(f"Unknown layer(s) {unknown} for {type(model).__name__}: valid names are {names}.")
        self.model, self.layers, self.mean, self.std = model, list(layers), mean, std
        self.ink = np.zeros((self.SIZE, self.SIZE), np.float32)
        self.shift = [0, 0]
        self.noise = 0.0
        self._pattern = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        self._pen: tuple[float, float] | None = None
        self._last_refresh = 0.0
        self._drawing = from_drawing(self.ink)

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
        self.probs = W.HTML()
        self.map_views = {n: W.Image(format="png") for n in self.layers}
        maps = [W.VBox([W.HTML(f"<b>{html.escape(n)}</b>"), v]) for n, v in self.map_views.items()]
        self.widget = W.VBox([
            W.HBox([W.VBox([self.canvas, W.HBox(list(self.buttons.values())[:5]),
                            W.HBox(list(self.buttons.values())[5:])]),
                    W.VBox([W.HTML("<b>what LeNet-1 reads</b>"), self.input_view, self.answer, self.probs])]),
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
        device = next(self.model.parameters()).device
        with models.evaluating(self.model), measure.ActivationRecorder(self.model, self.layers) as rec, \
                torch.no_grad():
            logits = self.model(loader.normalize(self.input().to(device), self.mean, self.std))
        return logits.float().softmax(1)[0].cpu(), rec.activations

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
            return
        probs, acts = self._read()
        best = int(probs.argmax())
        self.answer.value = (f'<div class="digit-answer">reads <b class="digit-prediction">{best}</b> '
                             f'({100 * probs[best]:.1f} %){note}</div>')
        self.probs.value = _probability_bars(probs, [str(d) for d in range(len(probs))])
        for name, view in self.map_views.items():
            maps = acts[name][0]
            if maps.dim() == 1:
                maps = maps[:, None, None]
            grid = viz.map_grid(maps, ncols=min(6, len(maps)))
            view.value = viz.to_png(grid, max(1, 240 // max(grid.shape[:2])))


class OcclusionExplorer(viz.WidgetView):
    """Slide a grey square over an image and watch the class probability (Zeiler & Fergus 2014).

    ``OcclusionExplorer(model, images, classes=None, window=None, mean=None, std=None)``: ``images``
    uint8 ``N x C x H x W``; ``classes`` the class names (default their numbers). Controls: image, the
    square's size and position, the class to follow (default: the network's answer). Left: the
    occluded image and the class probability with and without the square; right: the whole occlusion
    map (:func:`attribution.occlusion`) for this image, size and class, with the square outlined.
    """

    def __init__(self, model: torch.nn.Module, images: torch.Tensor, classes=None, window: int | None = None,
                 mean=None, std=None):
        from . import attribution

        self._attribution = attribution
        loader.check_images(images, "images")
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
        device = next(self.model.parameters()).device
        with models.evaluating(self.model), torch.no_grad():
            return self.model(x.to(device)).float().softmax(1).cpu()

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
            self._maps[key] = self._attribution.occlusion(self.model, x, key[2], self.window.value, stride)[0]
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


class ReceptiveFieldExplorer(viz.WidgetView):
    """Which input pixels one unit sees: pick a layer and a unit; the square its receptive field
    covers (:func:`measure.receptive_field`, from the layer sizes) is drawn in red on the image, and
    the pixels its gradient actually reaches (:func:`measure.measured_field`) are tinted green.

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
        kinds = (torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.AvgPool2d, models.SparseConv2d, models.Subsample)
        valid = []
        for name, m in model.named_modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Flatten)):
                break
            if isinstance(m, kinds):
                valid.append(name)
        names = valid if layers is None else list(layers)
        unknown = [n for n in names if n not in valid]
        if unknown or not names:
            raise KeyError(f"Layer(s) {unknown or names} have no receptive field to show: expected some of {valid}.")
        gen = torch.Generator().manual_seed(0)
        device = next(model.parameters()).device    # the model may live on a GPU (lesson 02's, after fit)
        self._probe = torch.randn(4, *image.shape, generator=gen).to(device)
        with models.evaluating(model), measure.ActivationRecorder(model, names) as rec, torch.no_grad():
            model(self._probe[:1])
        self._sizes = {n: tuple(a.shape[-2:]) for n, a in rec.activations.items()}
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
        """The selected unit's receptive field as ``(top, left, size, size)`` in input pixels (it may
        reach past the image's edge)."""
        size, stride, offset = measure.receptive_field(self.model, self.layer.value)
        return offset + self.row.value * stride, offset + self.col.value * stride, size, size

    def measured(self) -> torch.Tensor:
        """Bool ``H x W``: the pixels the selected unit's gradient reaches (on random images)."""
        return measure.measured_field(self.model, self.layer.value, self._probe, self.row.value, self.col.value)

    def update(self) -> None:
        """Redraw the image with the square and the measured pixels, and the numbers."""
        top, left, size, _ = self.field()
        reached = self.measured().numpy()
        img = self.image.permute(1, 2, 0).float().numpy() / 255
        img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
        shown = img * 0.6
        shown[reached] = shown[reached] * 0.5 + np.array([0.2, 0.8, 0.2]) * 0.5
        h, w = reached.shape
        rows, cols = np.clip([top, top + size - 1], 0, h - 1), np.clip([left, left + size - 1], 0, w - 1)
        red = np.array([1.0, 0.1, 0.1])
        for r in {int(rows[0]), int(rows[1])}:
            shown[r, cols[0]:cols[1] + 1] = red
        for c in {int(cols[0]), int(cols[1])}:
            shown[rows[0]:rows[1] + 1, c] = red
        self.view.value = viz.to_png(shown, max(1, 280 // max(h, w)))
        ys, xs = np.nonzero(reached)
        measured = (f"{ys.max() - ys.min() + 1} x {xs.max() - xs.min() + 1}" if len(ys) else "none")
        self.numbers.value = (f'<div class="field-numbers"><b>{html.escape(self.layer.value)}</b> unit '
                              f'({self.row.value}, {self.col.value})<br>receptive field <b>{size} x {size}</b> '
                              f'px from rows {top}..{top + size - 1}, cols {left}..{left + size - 1}<br>'
                              f'gradient reaches <b>{measured}</b> px inside the image</div>')

"""The convolution playground of lesson 01: slide a filter over a picture and watch one output pixel
being computed.

Every picture is sent to the browser as PNG bytes (``ipywidgets.Image``), computed with NumPy and
encoded once per change: a slider move never redraws a matplotlib figure. ``update()`` does one full
refresh synchronously, which is what the benchmarks time.
"""

from __future__ import annotations

import html
import math

import ipywidgets as W
import numpy as np
import torch
import torch.nn.functional as F

from .. import viz
from .base import WidgetView

KERNEL_PRESETS: dict[str, list[list[float]]] = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "blur (box)": [[1 / 9] * 3] * 3,
    "blur (Gaussian)": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "vertical edges (Sobel)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "horizontal edges (Sobel)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "outline (Laplacian)": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
}
# The playground's pictures are one gray plane plus red marks: 8-bit palette images (gray levels 0-254,
# entry 255 red) are a third of the bytes of RGB to compress, which keeps a slider move fast.
RED = 255
PALETTE = [v for g in range(255) for v in (g, g, g)] + [255, 40, 40]
MAX_KERNEL = 15


def parse_kernel(text: str) -> np.ndarray:
    """Read a kernel typed as rows of numbers (spaces or commas between values, one row a line).

    Returns a float64 ``k x k`` array. Raises ``ValueError`` with a message for a person: a value
    that is not a number, rows of different lengths, a kernel that is not square, even-sized (no
    center pixel) or larger than 15.
    """
    rows = [line.replace(",", " ").split() for line in text.strip().splitlines() if line.strip()]
    if not rows:
        raise ValueError("The kernel is empty: type rows of numbers, e.g. '0 -1 0' on three lines.")
    values = []
    for r, row in enumerate(rows, 1):
        try:
            values.append([float(eval_fraction(v)) for v in row])
        except (ValueError, ZeroDivisionError):
            bad = next(v for v in row if not _is_number(v))
            raise ValueError(f"Row {r}: {bad!r} is not a number. Use numbers like 1, -0.5 or 1/9.") from None
    return check_kernel(values)


def eval_fraction(token: str) -> float:
    """``"1/9"`` -> 0.111..., ``"-2"`` -> -2.0; raises ValueError for anything else."""
    if "/" in token:
        num, den = token.split("/", 1)
        return float(num) / float(den)
    return float(token)


def _is_number(token: str) -> bool:
    try:
        value = eval_fraction(token)
    except (ValueError, ZeroDivisionError):
        return False
    return math.isfinite(value)


def check_kernel(kernel) -> np.ndarray:
    """Validate a kernel given as nested lists or an array; returns a float64 ``k x k`` array.

    Raises ``ValueError`` naming what was expected (2-D, square, odd size up to 15, finite numbers).
    """
    if isinstance(kernel, (list, tuple)):
        lengths = {len(row) if isinstance(row, (list, tuple, np.ndarray)) else -1 for row in kernel}
        if len(lengths) > 1:
            raise ValueError(f"Every row of the kernel needs the same number of values; got rows of "
                             f"{sorted(lengths)} values.")
    try:
        k = np.asarray(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("The kernel must hold numbers only.") from None
    if k.ndim != 2:
        raise ValueError(f"The kernel must be 2-D (rows x columns), got {k.ndim}-D with shape {k.shape}.")
    if k.shape[0] != k.shape[1]:
        raise ValueError(f"The kernel must be square, got {k.shape[0]} rows x {k.shape[1]} columns.")
    if k.shape[0] % 2 == 0:
        raise ValueError(f"The kernel needs a center pixel: use an odd size (3, 5, 7), not {k.shape[0]}.")
    if k.shape[0] > MAX_KERNEL:
        raise ValueError(f"Kernels up to {MAX_KERNEL}x{MAX_KERNEL} only, got {k.shape[0]}x{k.shape[0]}.")
    if not np.isfinite(k).all():
        raise ValueError("The kernel holds a value that is not a finite number (nan or inf).")
    return k


def _format_kernel(k: np.ndarray) -> str:
    return "\n".join(" ".join(f"{v:.4g}" for v in row) for row in k)


def _table(values: np.ndarray, title: str, signed: bool) -> str:
    """An HTML table of numbers, each cell shaded by its value (blue negative, red positive)."""
    scale = np.abs(values).max() or 1.0
    rows = []
    for row in values:
        cells = []
        for v in row:
            t = v / scale
            if signed:
                color = f"rgba(220,40,40,{t:.2f})" if t > 0 else f"rgba(40,90,220,{-t:.2f})"
            else:
                g = int(255 * (1 - abs(t)) * 0.6 + 100)
                color = f"rgb({g},{g},{g})"
            cells.append(f'<td style="background:{color};padding:2px 5px;text-align:right">{v:.3g}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div style="margin:0 6px"><b>{html.escape(title)}</b>'
            f'<table style="border-collapse:collapse;font-family:monospace;font-size:11px">'
            + "".join(rows) + "</table></div>")


def _as_image_array(image, convert: bool = True) -> np.ndarray:
    """``H x W`` or ``H x W x 3`` (NumPy or a ``3 x H x W`` / ``1 x H x W`` tensor) -> float64 0..255
    (with ``convert=False``: the same layout, in its own dtype)."""
    src = image.detach().cpu().numpy() if torch.is_tensor(image) else np.asarray(image)
    a = src
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3) or a.size == 0:
        raise ValueError(f"Expected a gray H x W or color H x W x 3 image, got shape {src.shape}.")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"Expected an image of numbers, got dtype {a.dtype}.")
    if not convert:
        return a
    f = a.astype(np.float64)
    if not np.isfinite(f).all():
        raise ValueError("The image holds values that are not finite numbers (nan or inf).")
    if np.issubdtype(src.dtype, np.integer) and f.max() > 255:
        f = f / 257.0  # 16-bit gray levels 0-65535, not 0-255
    elif not np.issubdtype(src.dtype, np.integer) and f.max() <= 1.0 + 1e-4:
        f = np.clip(f, 0.0, 1.0) * 255.0  # floats in [0, 1], rounding error above 1 included
    return f


# The playground shows pixels one by one: a photo larger than this (on its longer side) is shrunk once,
# so that any photo keeps a slider move fast (a 4,000 x 4,000 photo took 0.27 s a move, 2.2 s to start).
MAX_SIDE = 256


def _fit_display(image) -> tuple[np.ndarray, str]:
    """The picture as float 0..255 (``H x W`` or ``H x W x 3``), shrunk (area averaging, before any
    conversion, so a huge photo starts fast) until its longer side is at most MAX_SIDE, and a note saying
    so ("" when it was small enough)."""
    array = _as_image_array(image, convert=False)
    h, w = array.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return _as_image_array(array), ""
    factor = MAX_SIDE / max(h, w)
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    t = torch.from_numpy(np.ascontiguousarray(array)).float()
    t = t.permute(2, 0, 1)[None] if t.dim() == 3 else t[None, None]
    small = F.interpolate(t, size=size, mode="area")[0]
    small = small.permute(1, 2, 0) if array.ndim == 3 else small[0]
    note = f"The {h}x{w} photo is shown shrunk to {size[0]}x{size[1]}: the playground works pixel by pixel."
    return _as_image_array(small.numpy().astype(array.dtype) if np.issubdtype(array.dtype, np.integer)
                           else small.numpy()), note


class ConvolutionPlayground(WidgetView):
    """Slide a filter over a picture and watch one output pixel being computed.

    ``ConvolutionPlayground(image, kernel=None)``: ``image`` is ``H x W`` (gray) or ``H x W x 3``
    (color; pick gray or one channel), uint8 0..255 or float 0..1. ``kernel`` is a square, odd-sized
    2-D array (default: vertical Sobel). Row/column sliders pick the output position; the input
    shows the receptive field in red, beside it the patch, the kernel, their element-wise product and
    its sum; the output map fills in up to that position. Display it with ``display(playground)``.
    """

    def __init__(self, image, kernel=None, scale: int | None = None):
        self.image, shrunk = _fit_display(image)
        self.kernel = check_kernel(kernel if kernel is not None else KERNEL_PRESETS["vertical edges (Sobel)"])
        color = self.image.ndim == 3
        h, w = self.image.shape[:2]
        self.scale = scale or max(1, 256 // max(h, w))
        self.preset = W.Dropdown(options=["(custom)"] + list(KERNEL_PRESETS), value="(custom)",
                                 description="kernel")
        self.channel = W.Dropdown(options=["gray", "red", "green", "blue"] if color else ["gray"],
                                  value="gray", description="channel")
        self.stride = W.IntSlider(value=1, min=1, max=4, description="stride")
        self.padding = W.IntSlider(value=0, min=0, max=MAX_KERNEL // 2, description="padding")
        self.row = W.IntSlider(value=0, min=0, max=0, description="row", continuous_update=True)
        self.col = W.IntSlider(value=0, min=0, max=0, description="column", continuous_update=True)
        self.kernel_text = W.Textarea(value=_format_kernel(self.kernel), description="values",
                                      layout=W.Layout(width="260px", height="110px"))
        self.message = W.HTML()
        self.input_view = W.Image(format="png")
        self.output_view = W.Image(format="png")
        self.arithmetic = W.HTML()
        self.sum_label = W.HTML()
        self._cache = None
        self._quiet = False  # True while the position sliders' ranges are being changed
        self._errors = {"text": "", "size": ""}  # what is wrong with the typed kernel, and with the sizes
        self.note = W.HTML(f"<i>{shrunk}</i>" if shrunk else "")
        self._sync_preset()

        for control in (self.channel, self.stride, self.padding):
            control.observe(lambda _: self._recompute(), names="value")
        for control in (self.row, self.col):
            control.observe(lambda _: None if self._quiet else self.update(), names="value")
        self.preset.observe(self._on_preset, names="value")
        self.kernel_text.observe(self._on_text, names="value")
        self._recompute()
        # start mid-picture, so the output map is already half filled in
        self.row.value, self.col.value = self.row.max // 2, self.col.max // 2

        self.widget = W.VBox([
            self.note,
            W.HBox([self.preset, self.channel]),
            W.HBox([self.stride, self.padding]),
            W.HBox([self.row, self.col]),
            W.HBox([W.VBox([W.HTML("<b>input</b> (receptive field in red)"), self.input_view]),
                    W.VBox([W.HTML("<b>output map</b> (filled up to this position)"), self.output_view])]),
            self.arithmetic,
            self.sum_label,
            W.HBox([self.kernel_text, self.message]),
        ])

    # ------------------------------------------------------------------ the computation
    def _plane(self) -> np.ndarray:
        if self.image.ndim == 2:
            return self.image
        if self.channel.value == "gray":
            return self.image @ np.array([0.299, 0.587, 0.114])
        return self.image[..., ["red", "green", "blue"].index(self.channel.value)]

    def _recompute(self) -> None:
        """New kernel, channel, stride or padding: recompute the whole output once, then draw."""
        k = self.kernel.shape[0]
        pad, stride = self.padding.value, self.stride.value
        plane = np.pad(self._plane(), pad)
        if plane.shape[0] < k or plane.shape[1] < k:
            self._cache = None
            self._set_range(0, 0)
            self.arithmetic.value = self.sum_label.value = ""
            self._show_error("size", f"The image is smaller than the {k}x{k} kernel: use a smaller kernel or "
                                     "more padding.")
            return
        self._show_error("size", "")
        x = torch.from_numpy(plane)[None, None]
        out = F.conv2d(x, torch.from_numpy(self.kernel)[None, None], stride=stride)[0, 0].numpy()
        lo, hi = out.min(), out.max()
        out_gray = ((out - lo) / (hi - lo + 1e-12) * 254).astype(np.uint8)  # 255 is the red entry
        base = (np.clip(plane, 0, 255) * (254 / 255)).astype(np.uint8)
        self._cache = {"plane": plane, "out": out, "out_idx": out_gray, "in_idx": base, "k": k, "stride": stride}
        self._set_range(out.shape[0] - 1, out.shape[1] - 1)
        self.update()

    def _set_range(self, row_max: int, col_max: int) -> None:
        """Give the position sliders new ranges without drawing in between: lowering one slider's max
        clamps its value and notifies at once, while the other may still point outside the new output."""
        self._quiet = True
        try:
            for slider, top in ((self.row, row_max), (self.col, col_max)):
                slider.value = min(slider.value, top)
                slider.max = top
        finally:
            self._quiet = False

    def output_size(self) -> tuple[int, int]:
        """Height and width of the full output map for the current settings."""
        return self._cache["out"].shape

    def value_at(self, row: int, col: int) -> float:
        """The output value at (row, col): the sum of patch x kernel."""
        return float(self._cache["out"][row, col])

    def update(self) -> None:
        """Redraw for the current position: receptive field, arithmetic, sum and output so far."""
        c = self._cache
        if c is None:
            return
        r, col, k, s = self.row.value, self.col.value, c["k"], c["stride"]
        y, x = r * s, col * s
        patch = c["plane"][y:y + k, x:x + k]
        product = patch * self.kernel
        total = float(product.sum())

        view = c["in_idx"].copy()
        view[y:y + k, [x, x + k - 1]] = RED
        view[[y, y + k - 1], x:x + k] = RED
        out = c["out_idx"].copy()
        flat = out.reshape(-1)
        position = r * out.shape[1] + col
        flat[position + 1:] = 127  # not computed yet: mid-gray
        flat[position] = RED
        self.input_view.value = viz.to_png(view, self.scale, palette=PALETTE)
        self.output_view.value = viz.to_png(out, self.scale, palette=PALETTE)
        self.arithmetic.value = ('<div style="display:flex;align-items:flex-start">'
                                 + _table(patch, "patch", signed=False) + "<div style='margin-top:20px'>×</div>"
                                 + _table(self.kernel, "kernel", signed=True) + "<div style='margin-top:20px'>=</div>"
                                 + _table(product, "product", signed=True) + "</div>")
        self.sum_label.value = (f'<span class="conv-sum">output[{r}, {col}] = sum of the product = '
                                f'<b>{total:.2f}</b></span>')

    # ------------------------------------------------------------------ events
    def _sync_preset(self) -> None:
        for name, values in KERNEL_PRESETS.items():
            if np.array(values).shape == self.kernel.shape and np.allclose(values, self.kernel):
                self.preset.value = name
                return

    def _on_preset(self, change) -> None:
        if change["new"] in KERNEL_PRESETS:
            self.kernel_text.value = _format_kernel(np.array(KERNEL_PRESETS[change["new"]], dtype=float))

    def _show_error(self, kind: str, text: str) -> None:
        """Set (or clear, with "") one kind of error and show every current one."""
        self._errors[kind] = text
        self.message.value = "".join(f'<div class="conv-error" style="color:#b00">{html.escape(t)}</div>'
                                     for t in self._errors.values() if t)

    def _on_text(self, change) -> None:
        try:
            kernel = parse_kernel(change["new"])
        except ValueError as err:
            self._show_error("text", str(err))
            return
        self._show_error("text", "")
        self.kernel = kernel
        self._recompute()

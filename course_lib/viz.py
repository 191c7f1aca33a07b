"""Pictures: grids of filters and feature maps, training curves, confusion matrices.

The grid functions return plain NumPy arrays (values in [0, 1]) so that the same grid can go to
matplotlib in a lesson or straight to PNG bytes in a widget (:func:`to_png`), which is much faster
than redrawing a figure.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch

DEAD_COLOR = (0.85, 0.1, 0.1)  # border of a dead channel


def _scale(t: torch.Tensor, normalize: str, symmetric: bool) -> torch.Tensor:
    """Map each tile (``normalize="per_filter"``) or the whole stack (``"global"``) to [0, 1].

    ``symmetric`` keeps 0 at mid-gray, which is how filter weights read best.
    """
    if normalize not in ("per_filter", "global"):
        raise ValueError(f"normalize must be 'per_filter' or 'global', got {normalize!r}.")
    dims = tuple(range(1, t.dim())) if normalize == "per_filter" else tuple(range(t.dim()))
    if symmetric:
        m = t.abs().amax(dim=dims, keepdim=True).clamp_min(1e-12)
        return t / (2 * m) + 0.5
    lo = t.amin(dim=dims, keepdim=True)
    hi = t.amax(dim=dims, keepdim=True)
    return (t - lo) / (hi - lo).clamp_min(1e-12)


def tile(tiles: np.ndarray, ncols: int | None = None, pad: int = 1, pad_value: float = 1.0,
         borders: np.ndarray | None = None) -> np.ndarray:
    """Lay ``N x h x w`` (gray) or ``N x h x w x 3`` (RGB) tiles on a grid with ``pad`` pixels between
    (torchvision's ``make_grid``).

    ``borders``: optional bool array of length N; those tiles get a red frame (e.g. dead channels).
    Returns an ``H x W`` or ``H x W x 3`` float array in [0, 1].
    """
    from torchvision.utils import make_grid

    n = tiles.shape[0]
    if n == 0:
        raise ValueError("Nothing to tile: got 0 tiles.")
    ncols = ncols or math.ceil(math.sqrt(n))
    rgb = tiles.ndim == 4 or borders is not None
    t = torch.as_tensor(np.asarray(tiles, dtype=np.float32))
    t = t.permute(0, 3, 1, 2) if t.dim() == 4 else t[:, None].expand(-1, 3 if rgb else 1, -1, -1)
    grid = make_grid(t, nrow=ncols, padding=pad, pad_value=pad_value) if n > 1 else \
        torch.nn.functional.pad(t[0], (pad,) * 4, value=pad_value)      # make_grid leaves a single tile bare
    if borders is not None and pad > 0:    # a red frame, in the padding, around each marked tile
        h, w = t.shape[-2:]
        red = torch.tensor(DEAD_COLOR, dtype=torch.float32).view(3, 1)   # broadcast over a row or a column
        for i in np.flatnonzero(np.asarray(borders)):
            r, c = divmod(int(i), ncols)
            y, x = r * (h + pad), c * (w + pad)               # the frame's top-left corner
            frame = grid[:, y:y + h + 2 * pad, x:x + w + 2 * pad]
            frame[:, [0, -1], :] = red[..., None]
            frame[:, :, [0, -1]] = red[..., None]
    out = grid.permute(1, 2, 0).numpy() if rgb else grid[0].numpy()
    return np.ascontiguousarray(out, dtype=np.float32)


def filter_grid(weights: torch.Tensor, ncols: int | None = None, normalize: str = "per_filter",
                rgb: bool | None = None, pad: int = 1) -> np.ndarray:
    """A picture of conv filters ``C_out x C_in x k x k`` with 0 at mid-gray.

    With ``rgb`` (default: when C_in is 3) each filter is one color tile. Otherwise every
    (output, input) channel pair is a gray tile, one row per output filter when C_in <= 16.
    Returns a float array in [0, 1], ``H x W`` or ``H x W x 3``.
    """
    if weights.dim() != 4:
        raise ValueError(f"Expected conv weights C_out x C_in x k x k, got {tuple(weights.shape)}.")
    w = weights.detach().float().cpu()
    c_out, c_in = w.shape[:2]
    rgb = (c_in == 3) if rgb is None else rgb
    if rgb:
        if c_in != 3:
            raise ValueError(f"rgb=True needs 3 input channels, got {c_in}.")
        tiles = _scale(w, normalize, symmetric=True).permute(0, 2, 3, 1).numpy()
        return tile(tiles, ncols, pad)
    # per_filter: one scale per output filter, shared by its input channels
    tiles = _scale(w, normalize, symmetric=True).reshape(c_out * c_in, *w.shape[2:]).numpy()
    if ncols is None and c_in <= 16 and c_in > 1:
        ncols = c_in
    return tile(tiles, ncols, pad)


def map_grid(maps: torch.Tensor, ncols: int | None = None, normalize: str = "global",
             dead: torch.Tensor | None = None, pad: int = 1) -> np.ndarray:
    """A picture of feature maps ``C x H x W`` (one input's activations), dead ones framed in red.

    ``normalize="global"`` shows all maps on one scale (so a dead map is black and sparse maps look
    sparse); ``"per_filter"`` stretches each map. Returns an ``H x W`` or ``H x W x 3`` float array.
    """
    if maps.dim() != 3:
        raise ValueError(f"Expected feature maps C x H x W (one image), got {tuple(maps.shape)}.")
    m = maps.detach().float().cpu()
    scaled = _scale(m, normalize, symmetric=False).numpy()
    borders = dead.cpu().numpy().astype(bool) if dead is not None else None
    return tile(scaled, ncols, pad, pad_value=1.0, borders=borders)


def to_png(array: np.ndarray, scale: int = 1, palette: list[int] | None = None) -> bytes:
    """PNG bytes of an image, enlarged ``scale`` times with nearest-neighbour so pixels stay crisp.

    Takes a float array in [0, 1] or a uint8 array, ``H x W`` or ``H x W x 3``. With ``palette`` (a
    flat list of up to 256 RGB triples), a uint8 ``H x W`` array holds palette indices: an 8-bit
    palette PNG, a third of the bytes of RGB to compress.
    """
    from PIL import Image

    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    if scale > 1:
        a = a.repeat(scale, axis=0).repeat(scale, axis=1)
    if palette is None:
        img = Image.fromarray(a)
    elif a.ndim != 2:
        raise ValueError(f"A palette image needs an H x W array of indices, got shape {a.shape}.")
    else:
        img = Image.frombytes("P", (a.shape[1], a.shape[0]), np.ascontiguousarray(a).tobytes())
        img.putpalette(palette)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def show(array: np.ndarray, title: str | None = None, ax=None, figsize=(6, 6)):
    """Show a grid array with matplotlib; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    ax.imshow(array, cmap="gray" if array.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_images(images: torch.Tensor, titles=None, ncols: int = 8, figsize=None):
    """Show uint8 images ``N x C x H x W`` (C = 1 or 3) in a row-major grid with optional titles."""
    import matplotlib.pyplot as plt

    n = len(images)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (1.4 * ncols, 1.6 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        img = images[i].cpu()
        if img.shape[0] == 1:
            ax.imshow(img[0], cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(img.permute(1, 2, 0))
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    fig.tight_layout()
    return fig


def plot_history(history, metrics=("loss", "accuracy"), axes=None):
    """Training curves: for each metric, train (and validation when present) against epoch."""
    import matplotlib.pyplot as plt

    if not history.epochs:
        raise ValueError("This History has no finished epoch to plot.")
    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
        axes = axes[0]
    epochs = history.column("epoch")
    for ax, metric in zip(axes, metrics):
        ax.plot(epochs, history.column(f"train_{metric}"), "o-", label="train")
        val = history.column(f"val_{metric}")
        if val:
            ax.plot(epochs, val, "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return axes


def plot_confusion(labels, predictions, class_names=None, ax=None, normalize=None):
    """Confusion matrix with scikit-learn's ``ConfusionMatrixDisplay``; returns the display."""
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = np.asarray(labels.cpu() if torch.is_tensor(labels) else labels)
    predictions = np.asarray(predictions.cpu() if torch.is_tensor(predictions) else predictions)
    return ConfusionMatrixDisplay.from_predictions(labels, predictions, display_labels=class_names,
                                                   ax=ax, normalize=normalize, colorbar=False,
                                                   values_format=None if normalize else "d")


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """An ``H x W x 3`` float picture: ``image`` (``H x W`` or ``H x W x 3``: uint8 gray levels, or floats in
    [0, 1] — told apart by their dtype, never by their values) under ``heat`` (``H x W``, any range: scaled to [0, 1]) coloured with ``cmap``."""
    import matplotlib

    img = np.asarray(image)
    img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    h = np.asarray(heat, dtype=np.float32)
    lo, hi = float(h.min()), float(h.max())
    h = (h - lo) / (hi - lo) if hi > lo else np.zeros_like(h)
    colored = matplotlib.colormaps[cmap](h)[..., :3]
    return np.clip((1 - alpha) * img + alpha * colored, 0.0, 1.0)

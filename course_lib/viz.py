"""Pictures: grids of filters and feature maps, training curves, confusion matrices.

The grid functions return plain NumPy arrays (values in [0, 1]) so that the same grid can go to
matplotlib in a lesson or straight to PNG bytes in a widget (:func:`to_png`), which is much faster
than redrawing a figure.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

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
        a = (np.clip(np.nan_to_num(a, nan=0.0), 0, 1) * 255).round().astype(np.uint8)   # NaN drawn black
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
    [0, 1] — told apart by their dtype, never by their values) under ``heat`` (``H x W``, any range: scaled to
    [0, 1]) coloured with ``cmap``."""
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


# --- the whole network at a glance ----------------------------------------------------------------

POOLINGS = ("MaxPool2d", "AvgPool2d", "Subsample")
SKIPPED = ("Dropout", "LocalResponseNorm", "StreamLocalResponseNorm", "AdaptiveAvgPool2d", "Identity")


@dataclass
class Column:
    """One column of :func:`glance`: what one stage of the network holds for one input.

    ``name`` (e.g. ``"conv1 + Tanh"``), ``kind`` (``"input"``, ``"maps"``, ``"vector"``, ``"logits"`` or
    ``"probabilities"``), ``values`` (maps ``C x H x W`` — only the ``shown`` ones —, a vector ``(n,)``, or the
    class scores), ``shown`` (the indices of the maps, units or classes in ``values``) and ``total`` (how many
    the stage has)."""

    name: str
    kind: str
    values: torch.Tensor
    shown: list[int]
    total: int


def _stages(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The model's leaf layers in the order they are defined (the order the course's networks run them)."""
    return [(n, m) for n, m in model.named_modules() if n and not list(m.children()) and ".halves." not in n]


def _strongest(maps: torch.Tensor, most: int) -> list[int]:
    """Indices of the ``most`` maps (or units) with the largest mean activation, in the layer's order."""
    if len(maps) <= most:
        return list(range(len(maps)))
    strength = maps.flatten(1).mean(1) if maps.dim() > 1 else maps
    return sorted(int(i) for i in strength.topk(most).indices)


def flow(model: torch.nn.Module, image: torch.Tensor, mean=None, std=None, most_maps: int = 8,
         all_maps_up_to: int = 16, top_classes: int = 10, batch_norm: bool = False) -> list[Column]:
    """One input through every layer of ``model``, as the columns :func:`glance` draws.

    ``image``: uint8 ``C x H x W`` or ``1 x C x H x W``, normalized with ``mean``/``std`` (default MNIST's for
    one channel, ImageNet's for three) as the network reads it. A convolution and the activation after it
    are one column (the activation's maps); each pooling is a column; a layer with more than
    ``all_maps_up_to`` maps shows its ``most_maps`` strongest (largest mean activation). The flattened vector
    and each hidden fully connected layer are vectors; the last layer gives the logits and the softmax
    probabilities (all classes, in order, up to ``top_classes``; else the ``top_classes`` most probable, most
    probable first). Dropout,
    local response normalization and the adaptive pooling (an identity at the paper's size) are left out.
    Returns the columns, input first. The model's mode is restored; no gradients are kept."""
    from .layers import ACTIVATIONS, CONV_LAYERS, device_of, input_channels, record_batch
    from .loader import normalize

    x = torch.as_tensor(image)
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or len(x) != 1 or x.dtype != torch.uint8:
        raise ValueError(f"glance draws one uint8 image C x H x W (or 1 x C x H x W), got "
                         f"{x.dtype} of shape {tuple(x.shape)}.")
    stages = [(n, m) for n, m in _stages(model) if type(m).__name__ not in SKIPPED
              and (batch_norm or not type(m).__name__.startswith("BatchNorm"))]
    if not stages:
        raise ValueError(f"{type(model).__name__} has no layers to show.")
    device = device_of(model)
    if device.type == "meta":
        raise ValueError(f"{type(model).__name__} is on the meta device (it has no weights to run): expected a "
                         "model with weights (load them, or move it to the CPU or a GPU).")
    try:
        channels = input_channels(model)
    except ValueError:
        channels = x.shape[1]
    if x.shape[1] != channels:
        raise ValueError(f"{type(model).__name__} reads images of {channels} channel(s), got one of {x.shape[1]} "
                         f"(shape {tuple(x.shape[1:])}).")
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    logits, acts = record_batch(model, normalize(x.to(device), mean, std).to(dtype), [n for n, _ in stages])
    columns = [Column("input", "input", x[0].float().cpu() / 255, list(range(x.shape[1])), x.shape[1])]
    last_linear = max((i for i, (_, m) in enumerate(stages) if isinstance(m, torch.nn.Linear)), default=None)
    i = 0
    while i < len(stages):
        name, module = stages[i]
        if i == last_linear:
            scores = acts[name][0].flatten()
            order = list(range(len(scores))) if len(scores) <= top_classes else \
                [int(j) for j in scores.topk(top_classes).indices]          # the most probable first
            probs = logits.float().softmax(1)[0].cpu()
            columns += [Column(f"{name} (scores)", "logits", scores[order], order, len(scores)),
                        Column("softmax", "probabilities", probs[order], order, len(probs))]
            break
        after = stages[i + 1][1] if i + 1 < len(stages) else None
        if isinstance(module, (*CONV_LAYERS, torch.nn.Linear)) and isinstance(after, ACTIVATIONS):
            # a layer and its activation are one column: the maps after the non-linearity
            columns.append(_column(f"{name} + {type(after).__name__}", acts[stages[i + 1][0]][0], most_maps,
                                   all_maps_up_to))
            i += 2
            continue
        columns.append(_column(name, acts[name][0], most_maps, all_maps_up_to))
        i += 1
    return columns


def _column(name: str, out: torch.Tensor, most_maps: int, all_maps_up_to: int) -> Column:
    if out.dim() == 3:
        shown = _strongest(out, most_maps) if len(out) > all_maps_up_to else list(range(len(out)))
        return Column(name, "maps", out[shown], shown, len(out))
    vector = out.flatten()
    return Column(name, "vector", vector, list(range(len(vector))), len(vector))


def check_class_names(class_names, classes: int) -> list[str] | None:
    """``class_names`` (None, or one name for each of the network's ``classes`` outputs) as a list of
    strings, or None. Raises ``ValueError`` when there are not as many names as classes."""
    if class_names is None:
        return None
    if isinstance(class_names, str) or not hasattr(class_names, "__len__"):
        raise ValueError(f"class_names must be a list of {classes} names, got {type(class_names).__name__}.")
    if len(class_names) != classes:
        raise ValueError(f"Expected {classes} class names (one for each of the network's outputs), got "
                         f"{len(class_names)}.")
    return [str(c) for c in class_names]


def vector_picture(vector: torch.Tensor, rows: int = 64) -> np.ndarray:
    """A long vector ``(n,)`` as a picture of at most ``rows`` rows, filled column by column, scaled to
    [0, 1] (0 at black for values >= 0, else 0 at mid-gray); the unused end is white. Returns ``rows' x cols``."""
    v = vector.detach().float().cpu().flatten()
    cols = max(1, math.ceil(len(v) / rows))
    rows = math.ceil(len(v) / cols)
    scaled = _scale(v[None], "global", symmetric=bool((v < 0).any()))[0].numpy()
    out = np.ones(rows * cols, np.float32)
    out[:len(v)] = scaled
    return out.reshape(cols, rows).T.copy()


def column_picture(column: Column, height: int = 240) -> np.ndarray:
    """The picture of one maps, input or vector column: maps stacked top to bottom (two side by side when
    there are more than 8) on one scale for the whole layer, so a sparse layer looks sparse."""
    if column.kind == "input":
        v = column.values
        return v[0].numpy() if len(v) == 1 else v.permute(1, 2, 0).numpy()
    if column.kind == "maps":
        return map_grid(column.values, ncols=1 if len(column.values) <= 8 else 2, pad=1)
    return vector_picture(column.values, rows=min(64, max(8, height // 4)))


def glance(model: torch.nn.Module, image: torch.Tensor, class_names=None, mean=None, std=None,
           most_maps: int = 8, top_classes: int = 10, figsize=None, columns: list[Column] | None = None):
    """Draw one input through every layer of ``model``, left to right: the input, every map of every
    convolution (with its activation) and pooling layer, one column a layer, the flattened vector and
    hidden layers, the class scores and the softmax probabilities named by ``class_names`` (default the
    class numbers). For a large network (AlexNet) each layer shows its ``most_maps`` strongest maps and the
    last two columns the ``top_classes`` most probable classes. ``image``: uint8 ``C x H x W``; ``columns``:
    the output of :func:`flow`, when already computed. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    columns = columns or flow(model, image, mean, std, most_maps=most_maps, top_classes=top_classes)
    class_names = check_class_names(class_names, next((c.total for c in columns if c.kind == "probabilities"),
                                                      len(class_names or ())))
    pictures = [c for c in columns if c.kind not in ("logits", "probabilities")]
    scores = [c for c in columns if c.kind in ("logits", "probabilities")]
    widths = [max(0.6, min(1.6, column_picture(c).shape[1] / max(1, column_picture(c).shape[0]) * 4)) for c in pictures]
    widths += [1.8] * len(scores)
    fig, axes = plt.subplots(1, len(widths), figsize=figsize or (1.25 * sum(widths) + 1, 4.2),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for ax, column in zip(axes[0], pictures):
        show(column_picture(column), ax=ax)
        more = f"\n{len(column.shown)} of {column.total}" if len(column.shown) < column.total else ""
        size = "x".join(str(s) for s in column.values.shape[-2:]) if column.kind in ("maps", "input") else \
            f"{column.total} numbers"
        ax.set_title(f"{column.name}\n{size}{more}", fontsize=8)
    for ax, column in zip(axes[0][len(pictures):], scores):
        names = [str(class_names[i]) if class_names is not None else str(i) for i in column.shown]
        values = column.values.numpy()
        colors = ["#3a7" if column.kind == "probabilities" else ("#c44" if v < 0 else "#48c") for v in values]
        ax.barh(range(len(values)), values, color=colors)
        ax.set_yticks(range(len(values)), names, fontsize=7)
        ax.invert_yaxis()
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(column.name if column.kind == "logits" else "probabilities", fontsize=8)
        if column.kind == "probabilities":
            ax.set_xlim(0, 1.25)
            for row, value in enumerate(values):
                if value >= 0.05:
                    ax.text(value + 0.02, row, f"{100 * value:.0f} %", va="center", fontsize=7)
    fig.tight_layout()
    return fig

"""Pictures of the networks, drawn from the models themselves (never pasted): the layers with the shapes
they produce, LeNet-1's connection table, AlexNet's two streams and where they exchange maps, receptive
fields growing layer by layer over a real image, and activation histograms across training.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from . import receptive_fields
from .layers import SPATIAL_LAYERS, layer_names, record_batch


def layer_shapes(model: nn.Module, input_shape: Sequence[int]) -> list[tuple[str, str, tuple]]:
    """``[(name, kind, output shape without the batch)]`` for the model's conv, pooling and linear layers,
    measured by running one input of ``input_shape`` (``C x H x W``) through it."""
    names = layer_names(model, (*SPATIAL_LAYERS, nn.Linear))
    _, acts = record_batch(model, torch.zeros(1, *input_shape), names)
    kinds = dict(model.named_modules())
    return [(n, type(kinds[n]).__name__, tuple(a.shape[1:])) for n, a in acts.items()]


def draw_layers(model: nn.Module, input_shape: Sequence[int], ax=None, title: str | None = None):
    """The model as a row of boxes, one per conv, pooling and linear layer, each labelled with its kind and
    the shape it outputs (measured), its height growing with the number of maps. Returns the axes."""
    import matplotlib.pyplot as plt

    shapes = [("input", "", tuple(input_shape))] + layer_shapes(model, input_shape)
    ax = ax or plt.subplots(figsize=(1.6 * len(shapes), 3.2))[1]
    top = max(s[2][0] for s in shapes)
    for i, (name, kind, shape) in enumerate(shapes):
        height = 0.3 + 2.2 * np.log1p(shape[0]) / np.log1p(top)
        color = {"Conv2d": "#8fb3de", "SparseConv2d": "#8fb3de", "Linear": "#e3b37a"}.get(kind, "#c9c9c9")
        ax.add_patch(plt.Rectangle((i * 1.5, -height / 2), 1.1, height, color=color, ec="black", lw=0.6))
        ax.text(i * 1.5 + 0.55, height / 2 + 0.12, name, ha="center", va="bottom", fontsize=8, weight="bold")
        ax.text(i * 1.5 + 0.55, -height / 2 - 0.12, " x ".join(map(str, shape)), ha="center", va="top", fontsize=7)
        if i:
            ax.annotate("", (i * 1.5, 0), (i * 1.5 - 0.4, 0), arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.set_xlim(-0.3, 1.5 * len(shapes)); ax.set_ylim(-1.9, 1.9); ax.axis("off")
    ax.set_title(title or f"{type(model).__name__}: each layer and the shape it outputs", fontsize=10)
    return ax


def draw_connection_table(table: Sequence[Sequence[int]], in_maps: int, ax=None):
    """A connection table as a grid: a filled square where output map ``o`` (a column) reads input map ``i``
    (a row), e.g. LeNet-1's H2 -> H3 table (4 x 12, 20 connections). Returns the axes."""
    import matplotlib.pyplot as plt

    grid = np.zeros((in_maps, len(table)))
    for o, inputs in enumerate(table):
        grid[list(inputs), o] = 1
    ax = ax or plt.subplots(figsize=(0.45 * len(table) + 1, 0.45 * in_maps + 1))[1]
    ax.imshow(grid, cmap="Blues", vmin=0, vmax=1.3)
    ax.set_xticks(range(len(table)), [str(o) for o in range(len(table))], fontsize=8)
    ax.set_yticks(range(in_maps), [str(i) for i in range(in_maps)], fontsize=8)
    ax.set_xlabel("output map (H3)"); ax.set_ylabel("input map (H2)")
    ax.set_title(f"{int(grid.sum())} connections", fontsize=10)
    return ax


def draw_streams(model: nn.Module, ax=None):
    """AlexNet's two streams: one column of layers per stream (the paper's two GPUs), each layer's width of
    maps written in it, and the places where the streams exchange maps (a layer that reads both halves
    below: conv3, fc6, fc7, fc8) marked by crossing arrows. Works for the grouped two-stream model and
    the single-stream one (drawn as one column). Returns the axes."""
    import matplotlib.pyplot as plt

    layers = [n for n in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8") if hasattr(model, n)]
    streams = getattr(model, "streams", 1)
    ax = ax or plt.subplots(figsize=(12, 3.6))[1]
    for i, name in enumerate(layers):
        layer = getattr(model, name)
        width = layer.out_channels if hasattr(layer, "out_channels") else layer.out_features
        groups = getattr(layer, "groups", 1)
        crossing = streams == 2 and groups == 1 and i > 0 and name != "conv1"
        last = name == "fc8"
        for s in range(1 if (streams == 1 or last) else 2):
            y = 0 if (streams == 1 or last) else (0.9 if s == 0 else -0.9)
            share = width if (streams == 1 or last) else width // 2
            ax.add_patch(plt.Rectangle((i * 1.4, y - 0.35), 1.0, 0.7, color="#8fb3de" if name.startswith("conv")
                                       else "#e3b37a", ec="black", lw=0.6))
            ax.text(i * 1.4 + 0.5, y, f"{name}\n{share}", ha="center", va="center", fontsize=8)
        if crossing:
            for y0, y1 in ((0.9, -0.9), (-0.9, 0.9)):
                ax.annotate("", (i * 1.4, y1 if not last else 0), (i * 1.4 - 0.4, y0),
                            arrowprops={"arrowstyle": "->", "color": "C3", "lw": 1.0})
    ax.set_xlim(-0.3, 1.4 * len(layers)); ax.set_ylim(-1.6, 1.6); ax.axis("off")
    ax.set_title("two streams (one per 2012 GPU); red arrows: where they exchange maps" if streams == 2 else
                 "one stream", fontsize=10)
    return ax


def draw_receptive_fields(model: nn.Module, image: torch.Tensor, layers: Sequence[str], ax=None):
    """Squares over ``image`` (uint8 ``C x H x W``): the receptive field of the centre unit of each of
    ``layers`` (:func:`receptive_fields.field_box`), from the first layer's small square to the last one's,
    each labelled with its size. Returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(4.5, 4.5))[1]
    c, h, w = image.shape
    ax.imshow(image.permute(1, 2, 0).numpy() if c == 3 else image[0].numpy(), cmap=None if c == 3 else "gray")
    shapes = dict((n, s) for n, _, s in layer_shapes(model, (c, h, w)))
    for k, layer in enumerate(layers):
        rows, cols = shapes[layer][-2:]
        top, left, bottom, right = receptive_fields.field_box(model, layer, rows // 2, cols // 2)
        size = bottom - top + 1
        ax.add_patch(plt.Rectangle((left - 0.5, top - 0.5), right - left + 1, size, fill=False, lw=1.5,
                                   color=f"C{k}", label=f"{layer}: {size} x {right - left + 1} px"))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xlim(-0.5 - 0.1 * w, w - 0.5 + 0.1 * w); ax.set_ylim(h - 0.5 + 0.1 * h, -0.5 - 0.1 * h); ax.axis("off")
    ax.set_title("the centre unit's receptive field, layer by layer", fontsize=10)
    return ax


def draw_activation_histograms(snapshots: list[dict], layer: str, ax=None, bins: int = 40):
    """Histograms of ``layer``'s activations on the probe batch, one per training snapshot (``fit``'s
    ``snapshot_every``), from the untrained network to the trained one, each as the share of outputs per
    bin (log scale; the first bin holds the zeros). Returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    values = [s["activations"][layer].flatten().numpy() for s in snapshots]
    top = max(float(np.quantile(v, 0.99)) for v in values) or 1.0
    edges = np.linspace(0, top, bins + 1)
    colors = plt.cm.viridis(np.linspace(0, 1, len(snapshots)))
    for s, v, color in zip(snapshots, values, colors):
        counts, _ = np.histogram(np.clip(v, 0, top), bins=edges)
        ax.step(edges[:-1], counts / len(v), where="post", color=color, label=f"epoch {s['epoch']}")
    ax.set_yscale("log"); ax.set_xlabel(f"{layer} activation"); ax.set_ylabel("share of outputs")
    ax.legend(fontsize=7, ncol=2); ax.set_title(f"{layer}: activations across training", fontsize=10)
    return ax

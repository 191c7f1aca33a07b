import io

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib import viz


def test_filter_grid_rgb_and_gray():
    rgb = viz.filter_grid(torch.randn(8, 3, 5, 5))
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and 0 <= rgb.min() and rgb.max() <= 1
    gray = viz.filter_grid(torch.randn(12, 4, 5, 5))  # one row per output filter, one column per input map
    assert gray.shape == (12 * 6 + 1, 4 * 6 + 1)


def test_zero_weight_is_mid_gray():
    w = torch.zeros(1, 1, 3, 3)
    w[0, 0, 0, 0] = 1.0
    grid = viz.filter_grid(w, pad=0)
    assert grid[0, 0] == 1.0 and grid[1, 1] == 0.5


def test_map_grid_frames_dead_channels_in_red():
    maps = torch.rand(4, 6, 6)
    grid = viz.map_grid(maps, ncols=4, dead=torch.tensor([False, True, False, False]))
    assert tuple(grid[0, 7]) == pytest.approx(viz.DEAD_COLOR)  # the frame of the 2nd tile
    assert tuple(grid[0, 0]) == (1.0, 1.0, 1.0)


def test_to_png_round_trip():
    a = np.linspace(0, 1, 12).reshape(3, 4)
    img = Image.open(io.BytesIO(viz.to_png(a, scale=2)))
    assert img.size == (8, 6)
    assert np.asarray(img)[0, 0] == 0 and np.asarray(img)[-1, -1] == 255


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="C_out x C_in x k x k"):
        viz.filter_grid(torch.zeros(3, 5, 5))
    with pytest.raises(ValueError, match="C x H x W"):
        viz.map_grid(torch.zeros(2, 3, 5, 5))


def test_palette_png_round_trip():
    from course_lib.widgets.playground import PALETTE, RED
    idx = np.array([[0, 127], [254, RED]], dtype=np.uint8)
    img = Image.open(io.BytesIO(viz.to_png(idx, scale=3, palette=PALETTE))).convert("RGB")
    assert img.size == (6, 6)
    pixels = np.asarray(img)
    assert tuple(pixels[0, 0]) == (0, 0, 0) and tuple(pixels[0, 3]) == (127, 127, 127)
    assert tuple(pixels[3, 0]) == (254, 254, 254) and tuple(pixels[5, 5]) == (255, 40, 40)
    with pytest.raises(ValueError, match="H x W array of indices"):
        viz.to_png(np.zeros((2, 2, 3), dtype=np.uint8), palette=PALETTE)


def test_the_pictures_of_the_networks_are_drawn_from_the_models():
    import matplotlib
    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    from course_lib import diagrams, models
    ax = diagrams.draw_layers(models.LeNet1(), (1, 28, 28))
    texts = [t.get_text() for t in ax.texts]
    assert "12 x 8 x 8" in texts and "4 x 24 x 24" in texts and "10" in texts
    ax = diagrams.draw_connection_table(models.LENET1_TABLE, 4)
    assert ax.get_title() == "20 connections"
    two, one = diagrams.draw_streams(models.AlexNet(num_classes=10)), diagrams.draw_streams(models.AlexNet(streams=1))
    crossings = lambda a: sum(1 for c in a.get_children() if type(c).__name__ == "Annotation")
    assert crossings(two) == 2 * 4 and crossings(one) == 0       # into conv3, fc6, fc7 and fc8, both ways
    image = torch.zeros(1, 28, 28, dtype=torch.uint8)
    ax = diagrams.draw_receptive_fields(models.LeNet1Simplified(), image, ["conv1", "conv2"])
    sizes = sorted(p.get_width() for p in ax.patches)
    assert sizes == [5, 14]      # conv1 sees its 5 x 5 kernel; conv2 5 x 5 pool1 units 2 apart over 2 x 2 each
    plt.close("all")

import numpy as np
import pytest
from PIL import Image
import io
import torch

from course_lib.widgets import explorers
from course_lib.widgets import playground as pg


@pytest.mark.parametrize("text, message", [
    ("1 2 3\n4 x 6\n7 8 9", "Row 2: 'x' is not a number"),
    ("1 2 3\n4 5\n7 8 9", "same number of values"),
    ("1 2\n3 4", "odd size"),
    ("1 2 3\n4 5 6", "square"),
    ("   ", "empty"),
    ("1 2 3\n4 1/0 6\n7 8 9", "not a number"),
])
def test_bad_kernels_get_clear_messages(text, message):
    with pytest.raises(ValueError, match=message):
        pg.parse_kernel(text)


def test_kernel_text_accepts_commas_and_fractions():
    k = pg.parse_kernel("1/9, 1/9, 1/9\n1/9 1/9 1/9\n1/9 1/9 1/9")
    assert k.shape == (3, 3) and np.isclose(k.sum(), 1)


@pytest.fixture
def playground():
    rng = np.random.default_rng(0)
    return pg.ConvolutionPlayground(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))


def _png_size(data):
    return Image.open(io.BytesIO(data)).size


def test_sum_is_patch_times_kernel(playground):
    playground.row.value, playground.col.value = 5, 7
    plane = playground._plane()
    expected = (plane[5:8, 7:10] * playground.kernel).sum()
    assert playground.value_at(5, 7) == pytest.approx(expected)
    assert f"{expected:.2f}" in playground.sum_label.value


def test_moving_the_slider_changes_sum_and_pictures(playground):
    before = (playground.sum_label.value, playground.input_view.value, playground.output_view.value)
    playground.col.value = 9
    after = (playground.sum_label.value, playground.input_view.value, playground.output_view.value)
    assert all(a != b for a, b in zip(before, after))


def test_stride_and_padding_resize_the_output(playground):
    assert playground.output_size() == (18, 22)
    playground.stride.value, playground.padding.value = 2, 1
    assert playground.output_size() == ((20 + 2 - 3) // 2 + 1, (24 + 2 - 3) // 2 + 1)
    assert (playground.row.max, playground.col.max) == (9, 11)


def test_bad_kernel_shows_message_and_keeps_old_kernel(playground):
    old = playground.kernel.copy()
    playground.kernel_text.value = "1 2\n3 4"
    assert "odd size" in playground.message.value
    assert np.array_equal(playground.kernel, old)
    playground.kernel_text.value = "0 0 0\n0 2 0\n0 0 0"
    assert playground.message.value == "" and playground.kernel[1, 1] == 2


def test_preset_sets_the_kernel(playground):
    playground.preset.value = "sharpen"
    assert playground.kernel[1, 1] == 5


def test_channel_choice(playground):
    playground.channel.value = "green"
    assert np.array_equal(playground._plane(), playground.image[..., 1])


def test_constructor_rejects_bad_inputs():
    with pytest.raises(ValueError, match="H x W x 3"):
        pg.ConvolutionPlayground(np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="odd size"):
        pg.ConvolutionPlayground(np.zeros((8, 8)), kernel=np.ones((2, 2)))


@pytest.fixture(scope="module")
def trained():
    from course_lib import digits, models, train
    x, y = digits.mnist_sample("train")
    probe = x[:8]
    model = models.LeNet5(activation="relu", pool="max")
    history = train.fit(model, (x[:256], y[:256]), epochs=2, snapshot_every=1, probe=probe,
                        progress=False, device="cpu")
    return model, history, probe


def test_activation_explorer_controls_change_the_picture(trained):
    model, history, probe = trained
    ex = explorers.ActivationExplorer(history, probe)
    assert list(ex.epoch.options) == [("0", 0), ("1", 1), ("2", 2)] and ex.epoch.value == 2
    before = ex.maps_view.value
    ex.layer.value = "act2"
    assert ex.maps_view.value != before and "16/16" not in ex.stats.value  # 16 maps, not all dead
    picture = ex.maps_view.value
    ex.epoch.value = 0
    assert ex.maps_view.value != picture
    ex.image.value = 3
    assert "sparsity" in ex.stats.value and "dead" in ex.stats.value


def test_activation_explorer_on_a_model_and_wrong_probe(trained):
    model, history, probe = trained
    ex = explorers.ActivationExplorer(model, probe, layers=["act1", "fc3"])
    assert list(ex.layer.options) == ["act1", "fc3"] and ex.epoch.layout.display == "none"
    ex.layer.value = "fc3"  # a linear layer is shown as 1x1 maps
    assert ex.maps_view.value
    with pytest.raises(ValueError, match="same probe batch"):
        explorers.ActivationExplorer(history, probe[:4])


def test_filter_explorer(trained):
    import torch
    model, history, _ = trained
    fx = explorers.FilterExplorer(history)
    assert list(fx.layer.options) == ["conv1", "conv2"]
    first = fx.grid_view.value
    fx.layer.value = "conv2"
    assert fx.grid_view.value != first and fx.numbers.value.count("<tr>") == 16 + 1
    fx.epoch.value = 0
    fx.normalize.value = "global"
    assert torch.equal(fx.current(), history.snapshots[0]["state"]["conv2.weight"])
    with pytest.raises(KeyError, match="conv9"):
        explorers.FilterExplorer(model, layers=["conv9"])


def test_filter_explorer_pages_wide_layers_and_shows_color():
    import torch
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 96, 11, stride=4))
    fx = explorers.FilterExplorer(net)
    assert fx.page.max == 1 and fx.page.layout.display is None  # 96 filters: two pages of 64
    assert fx.numbers.value.count("<tr>") == 64 + 1 and "color" in fx.numbers.value
    fx.page.value = 1
    assert fx.numbers.value.count("<tr>") == 32 + 1


def test_explorer_needs_snapshots():
    from course_lib.train import History
    with pytest.raises(ValueError, match="snapshot_every"):
        explorers.FilterExplorer(History())


def test_new_widgets_name_bad_arguments():
    from course_lib import models
    from course_lib.widgets import DigitCanvas, OcclusionExplorer, ReceptiveFieldExplorer

    with pytest.raises(KeyError, match="valid names"):
        DigitCanvas(models.LeNet1(), layers=("conv9",))
    digits_u8 = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    with pytest.raises(ValueError, match="between 1 and 28"):
        OcclusionExplorer(models.LeNet1(), digits_u8, window=40)
    with pytest.raises(ValueError, match="class names"):
        OcclusionExplorer(models.LeNet1(), digits_u8, classes=["a", "b"])
    with pytest.raises(TypeError, match="uint8"):
        OcclusionExplorer(models.LeNet1(), digits_u8.float())
    with pytest.raises(KeyError, match="no receptive field"):
        ReceptiveFieldExplorer(models.LeNet5(), digits_u8[0], layers=["fc1"])
    with pytest.raises(ValueError, match="one image"):
        ReceptiveFieldExplorer(models.LeNet5(), digits_u8)

"""Reliability, round four: each cause a red team or a code read found in the modules added in round three
(issue 40), as a test that failed before its fix. One section per module; each test names what used to happen."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from helpers import edge_detectors
from course_lib import image_folders, layers, made_images, references, train, trained, viz
from course_lib.claims import decade_transfer as moving
from course_lib.models import alexnet_variants as variants
from course_lib.widgets import GlanceView, OcclusionExplorer, from_drawing

IMAGE = torch.randint(0, 256, (1, 12, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def _net(classes: int = 3, act: nn.Module | None = None) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 2, 3), act or nn.ReLU(), nn.Flatten(), nn.Linear(2 * 10 * 10, classes))


def _reusing() -> nn.Sequential:
    """One nn.ReLU at two places."""
    relu = nn.ReLU()
    return nn.Sequential(nn.Conv2d(1, 2, 3), relu, nn.Conv2d(2, 2, 3), relu, nn.Flatten(), nn.Linear(2 * 8 * 8, 3))


# --- a module used twice ------------------------------------------------------------------------------------

def test_a_reused_module_is_refused_by_flow_glance_and_every_recorder():
    """flow/glance used to crash with "Sizes of tensors must match" (or label a column with the other call's
    maps); the recorders concatenated or counted both calls as if they were two steps."""
    model = _reusing()
    for call in (lambda: viz.flow(model, IMAGE), lambda: GlanceView(model, IMAGE),
                 lambda: layers.record_batch(model, torch.zeros(1, 1, 12, 12), ["1"])):
        with pytest.raises(ValueError, match="'1' \\(ReLU\\) ran twice in one forward pass"):
            call()
    with pytest.raises(ValueError, match="ran twice"), layers.ActivationHistograms(model, ["1"]):
        model.train()(torch.zeros(2, 1, 12, 12))
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())    # nothing left behind


def test_a_recorder_still_records_a_part_called_on_its_own():
    model = _net()
    with layers.ActivationRecorder(model, ["1"]) as rec:
        model[:2](torch.zeros(1, 1, 12, 12))
        model[:2](torch.zeros(1, 1, 12, 12))
    assert rec.activations["1"].shape == (2, 2, 10, 10)


def test_a_layer_listed_twice_or_a_recorder_entered_twice_is_refused():
    """ActivationHistograms(model, ["1", "1"]) and a second `with` on the same one counted each step twice."""
    model = _net()
    with pytest.raises(ValueError, match=r"\['1'\] listed twice"):
        layers.ActivationHistograms(model, ["1", "1"])
    with pytest.raises(ValueError, match="listed twice"):
        layers.ActivationRecorder(model, ["1", "1"])
    stats = layers.ActivationHistograms(model, ["1"])
    with stats, pytest.raises(RuntimeError, match="already recording"), stats:
        pass
    rec = layers.ActivationRecorder(model, ["1"])
    with rec, pytest.raises(RuntimeError, match="already recording"), rec:
        pass
    with stats:
        model.train()(torch.zeros(2, 1, 12, 12))
    assert len(stats.means["1"]) == 1


# --- the glance -------------------------------------------------------------------------------------------

def test_glance_on_unusual_networks():
    """No Linear: a bare StopIteration; too few class names: IndexError; NaN weights: "reads 0 (nan %)"."""
    view = GlanceView(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), IMAGE)
    assert "no Linear layer" in view.answer.value
    with pytest.raises(ValueError, match="Expected 3 class names .* got 1"):
        GlanceView(_net(), IMAGE, class_names=["a"])
    with pytest.raises(ValueError, match="Expected 3 class names"):
        viz.glance(_net(), IMAGE, class_names=["a"])
    nan = _net()
    with torch.no_grad():
        nan[3].weight.fill_(math.nan)
    assert "not finite" in GlanceView(nan, IMAGE).answer.value


@pytest.mark.parametrize("model, image, message", [
    (_net(), torch.zeros(3, 12, 12, dtype=torch.uint8), "reads images of 1 channel\\(s\\), got one of 3"),
    (_net().to("meta"), IMAGE, "meta device"),
])
def test_glance_names_a_wrong_input_or_a_model_without_weights(model, image, message):
    with pytest.raises(ValueError, match=message):
        GlanceView(model, image)


def test_glance_draws_a_float64_model():
    view = GlanceView(_net().double(), IMAGE)
    assert "reads" in view.answer.value


def test_a_view_follows_a_network_that_grows_or_shrinks():
    """New columns used to stay undrawn; removed ones left their pictures and titles on screen."""
    model = _net()
    view = GlanceView(model, IMAGE)

    def on_screen() -> list[str]:
        return [box.children[0].value for box in view.columns_box.children]

    assert len(on_screen()) == 3                       # the input, conv + ReLU, the flattened vector
    model.insert(2, nn.MaxPool2d(2))
    model[4] = nn.Linear(2 * 5 * 5, 3)
    view.update()
    assert len(on_screen()) == 4 and "<b>2</b>" in on_screen()[2] and all(v.value for v in view.views)
    del model[0:3]                                     # Flatten, Linear
    model[1] = nn.Linear(144, 3)
    view.update()
    assert len(on_screen()) == len(view.views) == 2 and "conv" not in "".join(on_screen()).lower()


def test_a_view_s_copy_does_not_feed_the_models_recorder():
    """deepcopy kept the model's forward hooks: a recorder started on the model collected every redraw of a
    snapshot."""
    model = _net()
    view = GlanceView(model, IMAGE)
    rec = layers.ActivationRecorder(model, ["1"]).start()
    try:
        view.add_snapshot({"epoch": 1, "step": 1, "state": {k: v.clone() for k, v in model.state_dict().items()}})
        view.slider.value = 0
        view.update()
    finally:
        rec.stop()
    assert "1" not in rec.activations


# --- optim ------------------------------------------------------------------------------------------------

def _blobs(n: int = 64):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 1, 12, 12), dtype=torch.uint8, generator=g), torch.arange(n) % 3


def test_the_range_test_leaves_modes_gradients_and_the_random_state_as_they_were():
    """A frozen BatchNorm came back in train mode, .grad was left on the parameters, the global RNG moved."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(200, 3))
    model.train()
    model[1].eval()
    model[0].weight.grad = torch.ones_like(model[0].weight)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    train.lr_range_test(model, _blobs(), steps=6, batch_size=16, device="cpu")
    assert torch.equal(torch.rand(3), expected)
    assert model.training and not model[1].training
    assert torch.equal(model[0].weight.grad, torch.ones_like(model[0].weight)) and model[4].weight.grad is None
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": -0.1}, "lr must be"), ({"lr": math.nan}, "lr must be"), ({"epochs": -2}, "epochs must be"),
    ({"steps_per_epoch": -1}, "steps_per_epoch must be"), ({"warmup_epochs": math.nan}, "warmup_epochs must be"),
])
def test_lr_schedule_refuses_a_negative_or_nan_setting(kwargs, message):
    settings = {"lr": 0.1, "epochs": 2, "steps_per_epoch": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        train.lr_schedule(settings.pop("lr"), **settings)


# --- lesson 09 --------------------------------------------------------------------------------------------

class _Data:
    """A stand-in for ImagenetteData: what split_classes and few_labels read."""

    def __init__(self, classes=4, per_class=3, **parts):
        labels = torch.arange(classes).repeat_interleave(per_class)
        self.classes = [f"c{i}" for i in range(classes)]
        self.train_images = self.val_images = torch.zeros(len(labels), 3, 4, 4, dtype=torch.uint8)
        self.train_labels = self.val_labels = labels
        self.__dict__.update(parts)

    def _replace(self, **parts):
        new = _Data(len(self.classes))
        new.__dict__.update({**self.__dict__, **parts})
        return new


@pytest.mark.parametrize("first", [0, 4, 9, -1, 1.5])
def test_split_classes_needs_two_parts(first):
    """first=0 gave an empty part silently; past the class count it was an IndexError."""
    with pytest.raises(ValueError, match="first must be a whole number of classes from 1 to 3"):
        moving.split_classes(_Data(), first)


def test_few_labels_needs_at_least_one_and_with_new_head_names_what_it_needs():
    with pytest.raises(ValueError, match="per_class must be a whole number >= 1"):
        moving.few_labels(_Data(), 0, seed=0)
    assert len(moving.few_labels(_Data(), 2, seed=0).train_labels) == 8
    with pytest.raises(ValueError, match="global average pooling"):
        moving.with_new_head(variants.AlexNetVariant(width=0.05), 5)


def test_the_transfer_gives_every_number_of_labels_the_same_steps():
    """len // batch undercounted the loader's ceil(n / batch) steps: 232 steps instead of 200 in cpu."""
    prof = type("P", (), {"next_batch_size": 64, "next_transfer_steps": 200, "next_epochs": 6})()
    for images in (50, 500, 640):
        epochs = moving.transfer_epochs(images, prof)
        assert 200 <= epochs * math.ceil(images / 64) < 200 + math.ceil(images / 64)


def test_a_variant_given_images_of_another_size_says_its_size():
    """An input smaller than the variant's image_size was a raw matmul error."""
    model = variants.AlexNetVariant(image_size=127, width=0.05)
    with pytest.raises(ValueError, match="sized for 127 x 127 images .* got 64 x 64"):
        model(torch.zeros(1, 3, 64, 64))


# --- trained: downloads -----------------------------------------------------------------------------------

def test_a_file_name_without_a_hash_is_not_trusted():
    """net-.pth had an empty hash prefix: its content was never checked."""
    with pytest.raises(RuntimeError, match="no SHA-256 prefix"):
        trained.hash_prefix("https://example.org/net-.pth")
    assert trained.hash_prefix("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth") == "7be5be79"


def test_a_wrong_file_in_the_hub_cache_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "alexnet-owt-7be5be79.pth").write_bytes(b"not the weights")
    with pytest.raises(RuntimeError, match="is not the file .* names"):
        trained._download_to_hub("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth")


# --- image folders ----------------------------------------------------------------------------------------

def test_a_class_folder_starting_with_an_underscore_is_a_class(tmp_path):
    """_background was dropped, shifting every later label; ImageFolder keeps it. Dot-folders stay hidden."""
    from PIL import Image
    for c in ("_background", "cat", ".ipynb_checkpoints"):
        (tmp_path / c).mkdir()
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / c / "0.png")
    classes, files = image_folders.image_files(tmp_path)
    assert classes == ["_background", "cat"] and [label for _, label in files] == [0, 1]


# --- made images, widgets, references ---------------------------------------------------------------------

_edges = edge_detectors


PLAIN = {"mean": (0.0,), "std": (1.0,)}


def test_maximize_works_in_inference_mode_and_names_a_meta_model():
    """Inside torch.inference_mode() it raised torch's "does not require grad"; a meta model an obscure error."""
    model = _edges()
    with torch.inference_mode():
        _, curve = made_images.maximize(model, "0", 0, size=9, steps=3, **PLAIN)
    assert curve[-1] > curve[0]
    with pytest.raises(ValueError, match="meta device"):
        made_images.maximize(_edges().to("meta"), "0", 0, size=9, steps=2, **PLAIN)


def test_maximize_over_every_position_finds_an_edge_detector():
    """unit=None excited the channel's mean, which cancels for an edge filter (weights summing to zero)."""
    image, _ = made_images.maximize(_edges(), "0", 0, size=16, steps=32, unit=None, **PLAIN)
    out = _edges()(image[None])[0].detach().abs().mean((1, 2))
    across, along = (image[0].diff(dim=1).abs().mean(), image[0].diff(dim=0).abs().mean())
    assert out[0] > 4 * out[1] and across > 4 * along


def test_infinite_ink_and_no_images_and_a_list_name_are_one_clear_line():
    with pytest.raises(ValueError, match="Expected finite ink"):
        from_drawing(np.full((10, 10), np.inf))
    with pytest.raises(ValueError, match="at least one image"):
        OcclusionExplorer(_net(), torch.zeros(0, 1, 12, 12, dtype=torch.uint8))
    with pytest.raises(KeyError, match="Unknown reference network \\['name'\\]"):
        references.spec(["name"])



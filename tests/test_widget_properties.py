"""Widgets never throw, whatever a learner does: random sequences of control changes (hypothesis).

After every step the widget must be consistent, not only alive: the playground's shown sum is the patch x
kernel sum and equals ``conv2d`` at that position, and the position sliders' ranges match the output size
for the current stride and padding; the explorers show the selected layer, with as many pages as it has
channels.
"""

import re

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage import data as photos

from course_lib import train
from course_lib.widgets.explorers import PAGE_SIZE, ActivationExplorer, FilterExplorer
from course_lib.widgets.playground import KERNEL_PRESETS, ConvolutionPlayground

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PHOTOS = {"camera": photos.camera(), "chelsea": photos.chelsea(), "coins": photos.coins()}


@st.composite
def images(draw):
    """A crop of a real photo: gray or color, uint8 or float in [0, 1], from 2 to 48 pixels a side."""
    photo = PHOTOS[draw(st.sampled_from(sorted(PHOTOS)))]
    h, w = draw(st.integers(2, 48)), draw(st.integers(2, 48))
    y, x = draw(st.integers(0, photo.shape[0] - h)), draw(st.integers(0, photo.shape[1] - w))
    crop = photo[y:y + h, x:x + w]
    return crop.astype(np.float64) / 255 if draw(st.booleans()) else crop


kernel_texts = st.one_of(
    st.sampled_from(["", "1 2\n3 4", "1 2 3\n4 5", "a b c\n1 2 3\n4 5 6", "1/0 1 1\n1 1 1\n1 1 1",
                     "nan 0 0\n0 1 0\n0 0 0", "1e400 0 0\n0 0 0\n0 0 0", "[[1, 2, 3]]", "1," * 17]),
    st.builds(lambda k, vals: "\n".join(" ".join(vals[r * k:(r + 1) * k]) for r in range(k)),
              st.sampled_from([1, 3, 5, 7]),
              st.lists(st.sampled_from(["0", "1", "-1", "2", "-0.5", "1/9", "3/4"]), min_size=49, max_size=49)),
    st.text(max_size=20),
)
playground_actions = st.lists(st.one_of(
    st.tuples(st.sampled_from(["row", "col"]), st.integers(0, 60)),
    st.tuples(st.just("stride"), st.integers(1, 4)),
    st.tuples(st.just("padding"), st.integers(0, 7)),
    st.tuples(st.just("channel"), st.sampled_from(["gray", "red", "green", "blue"])),
    st.tuples(st.just("preset"), st.sampled_from(["(custom)", *KERNEL_PRESETS])),
    st.tuples(st.just("kernel_text"), kernel_texts),
), min_size=1, max_size=40)


def _reference_plane(p):
    image = p.image
    if image.ndim == 3:
        image = image @ np.array([0.299, 0.587, 0.114]) if p.channel.value == "gray" else \
            image[..., ["red", "green", "blue"].index(p.channel.value)]
    return np.pad(image, p.padding.value)


def assert_playground_consistent(p):
    k, s = p.kernel.shape[0], p.stride.value
    plane = _reference_plane(p)
    if plane.shape[0] < k or plane.shape[1] < k:
        assert p._cache is None and "smaller than" in p.message.value
        return
    out_h, out_w = (plane.shape[0] - k) // s + 1, (plane.shape[1] - k) // s + 1
    assert (p.row.max, p.col.max) == (out_h - 1, out_w - 1), "position ranges must match the output size"
    assert 0 <= p.row.value <= p.row.max and 0 <= p.col.value <= p.col.max
    assert p.output_size() == (out_h, out_w)
    reference = F.conv2d(torch.from_numpy(plane)[None, None], torch.from_numpy(p.kernel)[None, None], stride=s)[0, 0]
    r, c = p.row.value, p.col.value
    shown = float(re.search(r"<b>(-?[\d.]+(?:e[-+]?\d+)?)</b>", p.sum_label.value).group(1))
    patch = plane[r * s:r * s + k, c * s:c * s + k]
    assert shown == pytest.approx(float((patch * p.kernel).sum()), abs=0.006, rel=1e-6)
    assert p.value_at(r, c) == pytest.approx(float(reference[r, c]), abs=1e-6, rel=1e-9)
    # the filled part of the output map: every position up to (r, c) equals conv2d there
    filled = r * out_w + c + 1
    assert np.allclose(p._cache["out"].reshape(-1)[:filled], reference.numpy().reshape(-1)[:filled])
    assert f"output[{r}, {c}]" in p.sum_label.value


@SETTINGS
@given(image=images(), actions=playground_actions)
def test_playground_survives_any_sequence_of_controls(image, actions):
    p = ConvolutionPlayground(image)
    assert_playground_consistent(p)
    for name, value in actions:
        control = getattr(p, name)
        if name == "channel" and value not in control.options:
            continue                              # a gray image offers only "gray"
        control.value = value
        assert_playground_consistent(p)


def test_moving_to_the_corner_then_changing_the_stride_keeps_working():
    """The failure reported in issue 12: bottom-right corner, then a larger stride."""
    for stride in (2, 3, 4):
        for padding in (0, 3):
            p = ConvolutionPlayground(photos.camera())
            p.row.value, p.col.value = p.row.max, p.col.max
            p.stride.value, p.padding.value = stride, padding
            assert_playground_consistent(p)


class Wide(nn.Module):
    """A tiny network with a 100-channel layer, so that the explorers must page (64 a page)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 100, 3)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(100, 6, 3)
        self.act2 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(6 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(self.flatten(self.act2(self.conv2(self.act1(self.conv1(x))))))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    y = torch.randint(0, 10, (64,))
    model = Wide()
    history = train.fit(model, (x, y), epochs=3, snapshot_every=1, probe=x[:5], progress=False, device="cpu")
    return model, history, x[:5]


def assert_explorer_consistent(e):
    acts_or_weights = e.current()
    channels = acts_or_weights.shape[1] if isinstance(e, ActivationExplorer) else acts_or_weights.shape[0]
    pages = -(-channels // PAGE_SIZE)
    assert e.page.max == pages - 1 and 0 <= e.page.value <= e.page.max
    assert 0 <= e.epoch.value < len(e.frames) and e.epoch.label == [lbl for lbl, _ in e.epoch.options][e.epoch.value]
    if isinstance(e, ActivationExplorer):
        assert f"<b>{e.layer.value}</b>" in e.stats.value and e.maps_view.value[:4] == b"\x89PNG"
    else:
        assert "mean smoothness" in e.numbers.value and e.grid_view.value[:4] == b"\x89PNG"


explorer_actions = st.lists(st.tuples(st.sampled_from(["layer", "image", "epoch", "page", "normalize"]),
                                      st.integers(0, 10)), min_size=1, max_size=40)


@SETTINGS
@given(actions=explorer_actions, from_history=st.booleans(), which=st.sampled_from(["activations", "filters"]))
def test_explorers_survive_any_sequence_of_controls(trained, actions, from_history, which):
    model, history, probe = trained
    source = history if from_history else model
    e = ActivationExplorer(source, probe) if which == "activations" else FilterExplorer(source)
    assert_explorer_consistent(e)
    for name, pick in actions:
        control = getattr(e, name, None)
        if control is None:
            continue
        if hasattr(control, "options"):
            options = [o[1] if isinstance(o, tuple) else o for o in control.options]
            control.value = options[pick % len(options)]
        else:
            control.value = min(pick, control.max)
        assert_explorer_consistent(e)


# --- the draw-a-digit canvas, the occlusion and receptive-field explorers (issue 13) ---------------

@pytest.fixture(scope="module")
def digit_model():
    from course_lib import digits, env, models

    x, y = digits.for_profile("train", env.profile("smoke"))
    torch.manual_seed(0)
    model = models.LeNet1()
    train.fit(model, (x[:1000], y[:1000]), epochs=1, lr=0.3, progress=False, device="cpu")
    return model


def assert_canvas_consistent(c):
    x = c.input()
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.uint8
    assert all(abs(s) <= c.MAX_SHIFT for s in c.shift) and 0 <= c.noise <= c.MAX_NOISE
    if c.empty():
        assert "Draw a digit" in c.answer.value and c.probs.value == ""
        return
    probs = c.probabilities()
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    shown = int(re.search(r'digit-prediction">(\d)<', c.answer.value).group(1))
    assert shown == int(probs.argmax()), "the answer shown must be the network's answer on the input shown"
    assert c.probs.value.count("prob-row") == 10
    assert all(v.value[:4] == b"\x89PNG" for v in c.map_views.values())


canvas_actions = st.lists(st.one_of(
    st.tuples(st.sampled_from(["down", "move"]), st.floats(-30, 310), st.floats(-30, 310)),
    st.tuples(st.just("up"), st.just(0.0), st.just(0.0)),
    st.tuples(st.just("button"), st.sampled_from(["clear", "left", "right", "up", "down", "noise", "reset"]),
              st.just(0.0)),
), min_size=1, max_size=40)


@SETTINGS
@given(actions=canvas_actions)
def test_digit_canvas_survives_any_sequence_of_pen_moves_and_buttons(digit_model, actions):
    from course_lib.widgets import DigitCanvas

    c = DigitCanvas(digit_model)
    c.LIVE_EVERY_S = 0.0          # refresh on every move, so that every step is checked
    assert_canvas_consistent(c)
    for kind, a, b in actions:
        if kind == "button":
            c.buttons[a].click()
        else:
            getattr(c, f"_{kind}")(a, b)
        assert_canvas_consistent(c)


def assert_occlusion_consistent(o):
    h, w = o.images.shape[-2:]
    k = o.window.value
    assert (o.row.max, o.col.max) == (h - k, w - k)
    assert 0 <= o.row.value <= o.row.max and 0 <= o.col.value <= o.col.max
    t = o.target_class()
    p_now = float(o._probs(o.occluded())[0, t])
    assert f"<b>{p_now:.3f}</b>" in o.numbers.value
    assert o.occlusion_map().shape == (h, w)
    assert o.map_view.value[:4] == b"\x89PNG"


occlusion_actions = st.lists(st.tuples(st.sampled_from(["image", "window", "row", "col", "target"]),
                                       st.integers(0, 40)), min_size=1, max_size=30)


@SETTINGS
@given(actions=occlusion_actions)
def test_occlusion_explorer_survives_any_sequence_of_controls(digit_model, actions):
    from course_lib import digits, env
    from course_lib.widgets import OcclusionExplorer

    x, _ = digits.for_profile("test", env.profile("smoke"))
    o = OcclusionExplorer(digit_model, x[:3])
    assert_occlusion_consistent(o)
    for name, pick in actions:
        control = getattr(o, name)
        if hasattr(control, "options"):
            control.value = [v for _, v in control.options][pick % len(control.options)]
        else:
            control.value = min(max(pick, control.min), control.max)
        assert_occlusion_consistent(o)


def assert_field_consistent(e):
    h, w = e._sizes[e.layer.value]
    assert (e.row.max, e.col.max) == (h - 1, w - 1)
    top, left, bottom, right = e.field()
    reached = e.measured()
    ys, xs = torch.nonzero(reached, as_tuple=True)
    H, W_ = reached.shape
    # the pixels the gradient reaches are exactly the receptive field's square inside the image
    assert (ys.min().item(), ys.max().item()) == (max(top, 0), min(bottom, H - 1))
    assert (xs.min().item(), xs.max().item()) == (max(left, 0), min(right, W_ - 1))
    assert f"<b>{bottom - top + 1} x {right - left + 1}</b>" in e.numbers.value


@SETTINGS
@given(actions=st.lists(st.tuples(st.sampled_from(["layer", "row", "col"]), st.integers(0, 30)),
                        min_size=1, max_size=25))
def test_receptive_field_explorer_survives_any_sequence_of_controls(actions):
    from course_lib import digits, env, models
    from course_lib.widgets import ReceptiveFieldExplorer

    x, _ = digits.for_profile("test", env.profile("smoke"))
    torch.manual_seed(0)
    e = ReceptiveFieldExplorer(models.LeNet5(activation="relu", pool="max"), x[0])
    assert_field_consistent(e)
    for name, pick in actions:
        control = getattr(e, name)
        if hasattr(control, "options"):
            control.value = control.options[pick % len(control.options)]
        else:
            control.value = min(pick, control.max)
        assert_field_consistent(e)


unit_actions = st.lists(st.one_of(
    st.tuples(st.just("layer"), st.sampled_from(["act1", "act2"])),
    st.tuples(st.just("unit"), st.integers(-3, 40)),
    st.tuples(st.just("strength"), st.floats(0, 1)),
    st.tuples(st.just("steps"), st.integers(5, 12)),
    st.tuples(st.just("seed"), st.integers(0, 9)),
    st.tuples(st.just("make"), st.none()),
), min_size=1, max_size=12)


@SETTINGS
@given(actions=unit_actions)
def test_unit_explorer_survives_any_sequence_of_controls(actions):
    """Lesson 08's widget: after every make, the image is in [0, 1], the curve has one value per step, and
    the activation shown is the unit's own, measured again on the image shown."""
    from course_lib import measure, models
    from course_lib.widgets import UnitExplorer
    torch.manual_seed(0)
    explorer = UnitExplorer(models.LeNet1(), size=28)
    for name, value in actions:
        if name == "make":
            explorer.make.click()
            if "error" in explorer.note.value:
                continue
            assert 0 <= explorer.image.min() and explorer.image.max() <= 1
            assert len(explorer.activations) == explorer.steps.value == explorer.bar.value
            acts = measure.record(explorer.model, (explorer.image[None] * 255).round().byte(), [explorer.layer.value])
            a = acts[explorer.layer.value][0, explorer.unit.value]
            assert f"unit {explorer.unit.value}:" in explorer.note.value and a.numel() > 0
        elif name == "unit":
            explorer.unit.value = value          # the slider clamps it to 0..units - 1
            assert 0 <= explorer.unit.value <= explorer.unit.max
        else:
            getattr(explorer, name).value = value
        assert explorer.unit.max == explorer.width(explorer.layer.value) - 1


glance_actions = st.lists(st.one_of(
    st.tuples(st.just("show"), st.integers(0, 99)),
    st.tuples(st.just("snapshot"), st.integers(0, 3)),
    st.tuples(st.just("slider"), st.integers(-1, 6)),
    st.tuples(st.just("stroke"), st.integers(0, 280)),
    st.tuples(st.just("clear"), st.just(0)),
), min_size=1, max_size=30)


@SETTINGS
@given(actions=glance_actions)
def test_glance_view_survives_any_sequence_of_inputs_snapshots_and_slider_moves(digit_model, actions):
    """After every step the view draws what it says: its probabilities are those of the weights its slider
    names (the model now, or a snapshot) on the image it holds."""
    import copy

    from course_lib import digits, env, viz
    from course_lib.widgets import DigitCanvas, GlanceView

    x, _ = digits.for_profile("test", env.profile("smoke"))
    states = []
    for k in range(4):       # four snapshots of weights: the model's, nudged
        state = {n: v + 0.05 * k * torch.randn_like(v) for n, v in digit_model.state_dict().items()}
        states.append({"epoch": k / 4, "step": 10 * k, "state": state})
    view = GlanceView(digit_model, x[0])
    canvas = DigitCanvas(digit_model)
    view.follow(canvas)
    twin = copy.deepcopy(digit_model)
    for kind, value in actions:
        if kind == "show":
            view.show(x[value])
        elif kind == "snapshot":
            view.add_snapshot(states[value])
        elif kind == "slider":
            options = [v for _, v in view.slider.options]
            view.slider.value = options[value % len(options)]
        elif kind == "stroke":
            canvas.stroke([(value, 40), (280 - value, 240)])
        else:
            canvas.clear()
        index = view.slider.value
        twin.load_state_dict(digit_model.state_dict() if index == -1 else view.snapshots[index]["state"])
        want = viz.flow(twin, view.image)[-1].values
        assert torch.allclose(view.columns[-1].values, want, atol=1e-5)
        assert all(v.value[:4] == b"\x89PNG" for v in view.views)

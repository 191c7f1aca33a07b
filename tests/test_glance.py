"""The whole network at a glance (viz.flow, viz.glance) and its live widget (widgets.GlanceView)."""

import matplotlib
import pytest
import torch

from course_lib import digits, env, models, train, viz
from course_lib.widgets import DigitCanvas, GlanceView

matplotlib.use("agg")


@pytest.fixture(scope="module")
def data():
    return digits.for_profile("train", env.profile("smoke"))


def test_lenet1_columns_follow_the_network_layer_by_layer(data):
    x, _ = data
    columns = viz.flow(models.LeNet1().train(), x[0])
    assert [(c.name, c.kind, tuple(c.values.shape)) for c in columns] == [
        ("input", "input", (1, 28, 28)), ("frame", "maps", (1, 28, 28)), ("conv1 + Tanh", "maps", (4, 24, 24)),
        ("pool1", "maps", (4, 12, 12)), ("conv2 + Tanh", "maps", (12, 8, 8)), ("pool2", "maps", (12, 4, 4)),
        ("flatten", "vector", (192,)), ("fc (scores)", "logits", (10,)), ("softmax", "probabilities", (10,))]


def test_the_columns_hold_what_the_network_computes(data):
    x, _ = data
    net = models.LeNet1().train()
    columns = {c.name: c for c in viz.flow(net, x[3])}
    assert net.training, "the model's mode is restored"
    net.eval()
    from course_lib import loader
    with torch.no_grad():
        z = net.frame(loader.normalize(x[3:4]))
        a1 = net.act1(net.conv1(z))
        logits = net(loader.normalize(x[3:4]))
    assert torch.allclose(columns["conv1 + Tanh"].values, a1[0], atol=1e-6)
    assert torch.allclose(columns["fc (scores)"].values, logits[0], atol=1e-5)
    assert torch.allclose(columns["softmax"].values, logits.softmax(1)[0], atol=1e-6)
    assert abs(float(columns["softmax"].values.sum()) - 1) < 1e-5


def test_alexnet_shows_its_strongest_maps_and_its_top_classes():
    torch.manual_seed(0)
    net = models.AlexNet(num_classes=1000)
    image = torch.randint(0, 256, (3, 112, 112), dtype=torch.uint8)
    columns = viz.flow(net, image, most_maps=8, top_classes=5)
    maps = [c for c in columns if c.kind == "maps"]
    assert [c.name for c in maps] == ["conv1 + ReLU", "pool1", "conv2 + ReLU", "pool2", "conv3 + ReLU",
                                      "conv4 + ReLU", "conv5 + ReLU", "pool5"]
    assert all(len(c.shown) == 8 and c.total in (96, 256, 384) for c in maps)
    # the control: every map left out is weaker than every map shown
    from course_lib import loader
    from course_lib.layers import record_batch
    _, acts = record_batch(net, loader.normalize(image[None]), ["act5"])
    strength = acts["act5"][0].flatten(1).mean(1)
    conv5 = next(c for c in maps if c.name == "conv5 + ReLU")
    hidden = [i for i in range(256) if i not in conv5.shown]
    assert strength[conv5.shown].min() >= strength[hidden].max()
    probs = columns[-1]
    assert probs.kind == "probabilities" and len(probs.shown) == 5 and probs.total == 1000
    full = net.eval()(loader.normalize(image[None])).softmax(1)[0]
    assert sorted(probs.shown) == sorted(full.topk(5).indices.tolist())


def test_bad_images_are_refused_with_what_was_expected(data):
    x, _ = data
    for bad in (x[:2], x[0].float(), x[0, 0]):
        with pytest.raises(ValueError, match="one uint8 image C x H x W"):
            viz.flow(models.LeNet1(), bad)
    with pytest.raises(ValueError, match="one uint8 image"):
        GlanceView(models.LeNet1(), x[:3])


def test_glance_draws_a_figure_with_a_column_a_layer(data):
    x, _ = data
    figure = viz.glance(models.LeNet5(), x[0], class_names=[f"digit {d}" for d in range(10)])
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[:2] == ["input\n28x28", "conv1 + Tanh\n28x28"] and titles[-1] == "probabilities"
    assert any(label.get_text() == "digit 0" for label in figure.axes[-1].get_yticklabels())
    matplotlib.pyplot.close(figure)


def test_the_view_follows_the_canvas_and_training_without_touching_the_model(data):
    x, y = data
    torch.manual_seed(0)
    net = models.LeNet1()
    view = GlanceView(net, x[0])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    train.fit(net, (x[:640], y[:640]), epochs=1, progress=False, device="cpu", probe=x[:1],
              snapshot_steps=[1, 5], on_snapshot=view.add_snapshot)
    assert [s["step"] for s in view.snapshots] == [0, 1, 5, 10]
    assert view.slider.value == 3 and [o[1] for o in view.slider.options] == [0, 1, 2, 3, -1]
    after = {k: v.clone() for k, v in net.state_dict().items()}
    trained = view.columns[-1].values.clone()
    view.slider.value = 0                       # back to the untrained network: its own probabilities
    assert not torch.allclose(view.columns[-1].values, trained, atol=1e-3)
    untrained = models.LeNet1()
    untrained.load_state_dict(before)
    want = viz.flow(untrained, x[0])[-1].values
    assert torch.allclose(view.columns[-1].values, want, atol=1e-6)
    assert all(torch.equal(after[k], v) for k, v in net.state_dict().items()), "the model itself is untouched"
    canvas = DigitCanvas(net)
    view.slider.value = -1
    view.follow(canvas)
    canvas.stroke([(140, 40 + 10 * i) for i in range(21)])
    assert torch.equal(view.image, canvas.input()) and "glance-prediction" in view.answer.value
    assert view.snapshot()[:4] == b"\x89PNG"


def test_on_snapshot_needs_snapshots_and_callables(data):
    x, y = data
    with pytest.raises(ValueError, match="needs snapshots"):
        train.fit(models.LeNet1(), (x[:64], y[:64]), epochs=1, progress=False, on_snapshot=print)
    with pytest.raises(ValueError, match="must be a callable"):
        train.fit(models.LeNet1(), (x[:64], y[:64]), epochs=1, progress=False, probe=x[:1], snapshot_steps=[1],
                  on_snapshot=[3])


def test_a_listener_that_raises_is_dropped_with_a_message_not_a_traceback(data):
    net = models.LeNet1()
    canvas = DigitCanvas(net)

    def broken(_):
        raise RuntimeError("boom")

    canvas.on_change(broken)
    canvas.stroke([(140, 40), (140, 200)])
    assert "stopped telling broken: RuntimeError: boom" in canvas.note.value and canvas._listeners == []
    canvas.stroke([(100, 40), (100, 200)])       # drawing goes on

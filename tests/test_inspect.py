import gc

import pytest
import torch

from course_lib import data, inspect, models, train


def _hook_count(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_recorder_records_and_removes_hooks():
    model = models.LeNet1()
    with inspect.ActivationRecorder(model, ["conv1", "act2", "fc"]) as rec:
        assert _hook_count(model) == 3
        model(torch.zeros(2, 1, 28, 28))
        model(torch.zeros(3, 1, 28, 28))
    assert _hook_count(model) == 0
    acts = rec.activations
    assert acts["conv1"].shape == (5, 4, 24, 24) and acts["act2"].shape == (5, 12, 8, 8) and acts["fc"].shape == (5, 10)
    assert not acts["conv1"].requires_grad and acts["conv1"].device.type == "cpu"


def test_hooks_removed_when_the_body_raises():
    model = models.LeNet1()
    with pytest.raises(RuntimeError):
        with inspect.ActivationRecorder(model):
            raise RuntimeError("boom")
    assert _hook_count(model) == 0


def test_rerunning_a_cell_never_stacks_hooks():
    model = models.LeNet1()
    for _ in range(3):  # a notebook cell that starts a recorder without `with`, run three times
        rec = inspect.ActivationRecorder(model, ["conv1"]).start()
    assert _hook_count(model) == 1
    rec.stop()
    assert _hook_count(model) == 0


def test_unknown_layer_lists_valid_names():
    with pytest.raises(KeyError, match=r"conv3.*valid names are.*'conv1'.*'fc'"):
        inspect.ActivationRecorder(models.LeNet1(), ["conv3"])


def test_default_layers_are_the_interesting_ones():
    names = inspect.layer_names(models.LeNet1())
    assert names == ["conv1", "act1", "pool1", "conv2", "act2", "pool2", "fc"]


def test_sparsity():
    assert inspect.sparsity(torch.tensor([0.0, 0.0, 1.0, -2.0])) == 0.5
    assert inspect.sparsity(torch.tensor([0.05, 1.0]), threshold=0.1) == 0.5


def test_dead_filters_found_exactly_on_a_network_killed_on_purpose():
    model = models.LeNet5(activation="relu")
    with torch.no_grad():
        model.conv2.bias[[1, 7, 12]] = -1e4
    x, _ = data.digits("test")
    acts = inspect.record(model, x[:64], ["act2"])["act2"]
    assert inspect.dead_filters(acts).nonzero().flatten().tolist() == [1, 7, 12]


def test_dead_filters_needs_zero_everywhere():
    acts = torch.zeros(4, 3, 5, 5)
    acts[3, 1, 4, 4] = 0.1  # channel 1 fires once, on one image, at one position
    assert inspect.dead_filters(acts).tolist() == [True, False, True]
    with pytest.raises(ValueError, match="N x C x H x W"):
        inspect.dead_filters(torch.zeros(5))


def test_smoothness_orders_gaussian_above_noise():
    r = torch.linspace(-2, 2, 5)
    gaussian = torch.exp(-(r[:, None] ** 2 + r[None] ** 2) / (2 * 1.5 ** 2))[None, None]
    noise = torch.randn(200, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    s_gauss = inspect.filter_smoothness(gaussian).item()
    s_noise = inspect.filter_smoothness(noise)
    assert s_gauss > 0.9 and s_noise.mean() < 0.3 and (s_noise < s_gauss).all()
    # a blurred version of the noise sits in between
    blurred = torch.nn.functional.conv2d(torch.nn.functional.pad(noise, (1, 1, 1, 1), mode="replicate"),
                                         torch.full((1, 1, 3, 3), 1 / 9))
    assert s_noise.mean() < inspect.filter_smoothness(blurred).mean() < s_gauss


def test_color_score_orders_gray_below_color():
    pattern = torch.randn(1, 1, 5, 5)
    gray = pattern.expand(1, 3, 5, 5)
    colored = torch.cat([pattern, -pattern, torch.zeros_like(pattern)], 1)
    assert inspect.color_score(gray).item() == pytest.approx(0.0, abs=1e-6)
    assert inspect.color_score(colored).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="C_out x 3 x k x k"):
        inspect.color_score(torch.zeros(2, 1, 5, 5))


def test_snapshot_memory_is_bounded_and_as_documented():
    x, y = data.digits("train")
    probe = x[:16]
    model = models.LeNet1()
    history = train.fit(model, (x[:256], y[:256]), epochs=4, snapshot_every=2, probe=probe,
                        progress=False, device="cpu")
    assert [s["epoch"] for s in history.snapshots] == [0, 2, 4]  # start, every 2 epochs, end
    params = sum(v.numel() for v in model.state_dict().values())
    acts_per_image = sum(a[0].numel() for a in history.snapshots[0]["activations"].values())
    stored = sum(sum(v.numel() for v in s["state"].values()) + sum(a.numel() for a in s["activations"].values())
                 for s in history.snapshots)
    assert stored == len(history.snapshots) * (params + len(probe) * acts_per_image)
    # the snapshots are copies: the weights at epoch 0 differ from the trained ones
    assert not torch.equal(history.snapshots[0]["state"]["conv1.weight"], model.conv1.weight.detach())


def test_snapshots_need_a_probe():
    x, y = data.digits("train")
    with pytest.raises(ValueError, match="probe"):
        train.fit(models.LeNet1(), (x, y), epochs=1, snapshot_every=1, device="cpu")

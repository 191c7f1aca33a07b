import math

import pytest
import torch

from course_lib import digits, layers, measure, models, receptive_fields, train


def _hook_count(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_recorder_records_and_removes_hooks():
    model = models.LeNet1()
    with layers.ActivationRecorder(model, ["conv1", "act2", "fc"]) as rec:
        assert _hook_count(model) == 3 + 1          # one a layer, and the pass counter's on the model
        model(torch.zeros(2, 1, 28, 28))
        model(torch.zeros(3, 1, 28, 28))
    assert _hook_count(model) == 0
    acts = rec.activations
    assert acts["conv1"].shape == (5, 4, 24, 24) and acts["act2"].shape == (5, 12, 8, 8) and acts["fc"].shape == (5, 10)
    assert not acts["conv1"].requires_grad and acts["conv1"].device.type == "cpu"


def test_hooks_removed_when_the_body_raises():
    model = models.LeNet1()
    with pytest.raises(RuntimeError):
        with layers.ActivationRecorder(model):
            raise RuntimeError("boom")
    assert _hook_count(model) == 0


def test_rerunning_a_cell_never_stacks_hooks():
    model = models.LeNet1()
    for _ in range(3):  # a notebook cell that starts a recorder without `with`, run three times
        rec = layers.ActivationRecorder(model, ["conv1"]).start()
    assert _hook_count(model) == 1 + 1          # one recorder: its layer's hook and its pass counter's
    rec.stop()
    assert _hook_count(model) == 0


def test_unknown_layer_lists_valid_names():
    with pytest.raises(KeyError, match=r"conv3.*valid names are.*'conv1'.*'fc'"):
        layers.ActivationRecorder(models.LeNet1(), ["conv3"])


def test_default_layers_are_the_interesting_ones():
    names = layers.layer_names(models.LeNet1())
    assert names == ["conv1", "act1", "pool1", "conv2", "act2", "pool2", "fc"]


def test_sparsity():
    assert measure.sparsity(torch.tensor([0.0, 0.0, 1.0, -2.0])) == 0.5
    assert measure.sparsity(torch.tensor([0.05, 1.0]), threshold=0.1) == 0.5


def test_dead_filters_found_exactly_on_a_network_killed_on_purpose():
    # a fixed draw: an unseeded ReLU network can have a channel of its own that no probe digit turns on
    torch.manual_seed(0)
    model = models.LeNet5(activation="relu")
    with torch.no_grad():
        model.conv2.bias[[1, 7, 12]] = -1e4
    x, _ = digits.mnist_sample("test")
    acts = measure.record(model, x[:64], ["act2"])["act2"]
    assert measure.dead_filters(acts).nonzero().flatten().tolist() == [1, 7, 12]


def test_dead_filters_needs_zero_everywhere():
    acts = torch.zeros(4, 3, 5, 5)
    acts[3, 1, 4, 4] = 0.1  # channel 1 fires once, on one image, at one position
    assert measure.dead_filters(acts).tolist() == [True, False, True]
    with pytest.raises(ValueError, match="N x C x H x W"):
        measure.dead_filters(torch.zeros(5))


def test_smoothness_orders_gaussian_above_noise():
    r = torch.linspace(-2, 2, 5)
    gaussian = torch.exp(-(r[:, None] ** 2 + r[None] ** 2) / (2 * 1.5 ** 2))[None, None]
    noise = torch.randn(200, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    s_gauss = measure.filter_smoothness(gaussian).item()
    s_noise = measure.filter_smoothness(noise)
    assert s_gauss > 0.9 and s_noise.mean() < 0.3 and (s_noise < s_gauss).all()
    # a blurred version of the noise sits in between
    blurred = torch.nn.functional.conv2d(torch.nn.functional.pad(noise, (1, 1, 1, 1), mode="replicate"),
                                         torch.full((1, 1, 3, 3), 1 / 9))
    assert s_noise.mean() < measure.filter_smoothness(blurred).mean() < s_gauss


def test_color_score_orders_gray_below_color():
    pattern = torch.randn(1, 1, 5, 5)
    gray = pattern.expand(1, 3, 5, 5)
    colored = torch.cat([pattern, -pattern, torch.zeros_like(pattern)], 1)
    assert measure.color_score(gray).item() == pytest.approx(0.0, abs=1e-6)
    assert measure.color_score(colored).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="C_out x 3 x k x k"):
        measure.color_score(torch.zeros(2, 1, 5, 5))


def test_snapshot_memory_is_bounded_and_as_documented():
    x, y = digits.mnist_sample("train")
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
    x, y = digits.mnist_sample("train")
    with pytest.raises(ValueError, match="probe"):
        train.fit(models.LeNet1(), (x, y), epochs=1, snapshot_every=1, device="cpu")


def test_live_sparsity_leaves_dead_channels_out():
    acts = torch.zeros(2, 3, 2, 2)
    acts[:, 0] = 1.0                      # always on
    acts[0, 1, 0, 0] = 1.0                # on once in 8 entries
    # channel 2 is dead: counted by dead_filters, not as "sparse"
    assert measure.sparsity(acts) == pytest.approx(15 / 24)
    assert measure.live_sparsity(acts) == pytest.approx(7 / 16)
    assert math.isnan(measure.live_sparsity(torch.zeros(2, 3)))


def test_localization_is_top_share_uniform_low_spot_high():
    uniform = torch.ones(1, 1, 10, 10)
    spot = torch.zeros(1, 1, 10, 10)
    spot[0, 0, 4, 4] = 3.0
    assert measure.localization(uniform) == pytest.approx(0.1)
    assert measure.localization(spot) == pytest.approx(1.0)
    both = torch.cat([uniform, spot, torch.zeros(1, 1, 10, 10)])    # the all-zero map is left out
    assert measure.localization(both) == pytest.approx(0.55)
    with pytest.raises(ValueError, match="N x C x H x W"):
        measure.localization(torch.ones(3, 4))


def test_filter_frequency_orders_blob_noise_and_stripes():
    r = torch.linspace(-2, 2, 5)
    blob = torch.exp(-(r[:, None] ** 2 + r[None] ** 2) / 2)[None, None]
    stripes = torch.tensor([1.0, -1.0]).repeat(3)[:5].expand(5, 5)[None, None]
    noise = torch.randn(500, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    f_blob, f_noise, f_stripes = (measure.filter_frequency(w).mean().item() for w in (blob, noise, stripes))
    assert f_blob < 0.15 < f_noise < f_stripes
    # a color blob (constant in space, other per channel) is low-frequency however colorful it is
    color_blob = torch.stack([blob[0, 0], -blob[0, 0], blob[0, 0] * 0])[None]
    assert measure.filter_frequency(color_blob).item() == pytest.approx(f_blob, rel=1e-5)


def test_resemblance_is_chance_corrected():
    from skimage import data as photos
    cat = torch.from_numpy(photos.chelsea()).float().mean(-1)          # 300 x 451 gray
    small = torch.nn.functional.adaptive_avg_pool2d(cat[None, None], (8, 8))[0]
    same = measure.resemblance(small, cat)
    assert same["raw"] == pytest.approx(1.0, abs=1e-5) and same["corrected"] > 0.5
    noise = torch.randn(256, 6, 6, generator=torch.Generator().manual_seed(0))
    random = measure.resemblance(noise, cat)
    # many small random maps: a sizeable raw correlation by chance, nothing after correction
    assert random["raw"] > 0.4 and random["chance"] > 0.4 and abs(random["corrected"]) < 0.2


@pytest.mark.parametrize("net, layer", [("lenet5", "conv1"), ("lenet5", "pool1"), ("lenet5", "pool2"),
                                        ("alexnet", "pool1"), ("alexnet", "conv2"), ("alexnet", "conv5")])
def test_receptive_field_matches_the_gradient(net, layer):
    """The input pixels whose gradient is non-zero for one unit lie inside the computed field and
    reach (nearly) its edges."""
    torch.manual_seed(0)
    model = models.AlexNet(num_classes=10, lrn=False) if net == "alexnet" else models.LeNet5()
    x = torch.randn(1, 3, 227, 227) if net == "alexnet" else torch.randn(1, 1, 28, 28)
    x.requires_grad_(True)
    size, stride, offset = receptive_fields.receptive_field(model, layer)
    out = {}
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: out.setdefault("y", o))
    try:
        model.eval()(x)
    finally:
        handle.remove()
    i = out["y"].shape[-1] // 2
    out["y"][0, :, i, i].sum().backward()
    seen = (x.grad[0].abs().sum(0) > 0).nonzero()
    first = offset + i * stride
    assert seen.min().item() >= max(first, 0) and seen.max().item() <= first + size - 1
    assert seen.max().item() - seen.min().item() >= size - 1 - 2 * stride   # max pooling may skip a little


def test_receptive_field_of_alexnet_conv5_is_163():
    assert receptive_fields.receptive_field(models.AlexNet(), "conv5") == (163, 16, -66)
    with pytest.raises(ValueError, match="sees the whole image"):
        receptive_fields.receptive_field(models.AlexNet(), "fc6")
    with pytest.raises(KeyError, match="Unknown layer"):
        receptive_fields.receptive_field(models.AlexNet(), "conv9")


def test_top_patches_cut_the_receptive_field_of_the_strongest_units():
    images = torch.arange(2 * 10 * 10, dtype=torch.float32).view(2, 1, 10, 10)
    acts = torch.zeros(2, 3, 4, 4)
    acts[1, 2, 3, 0] = 5.0        # image 1, row 3, col 0
    acts[0, 2, 1, 2] = 4.0
    patches, where = receptive_fields.top_patches(acts, images, channel=2, k=2, field=(4, 2, -1))
    assert where == [(1, 3, 0), (0, 1, 2)]
    assert patches.shape == (2, 1, 4, 4)
    # unit (3, 0) sees rows 5..8 and columns -1..2: the column outside the image is zero
    assert torch.equal(patches[0, 0, :, 1:], images[1, 0, 5:9, 0:3]) and patches[0, 0, :, 0].eq(0).all()
    assert torch.equal(patches[1, 0], images[0, 0, 1:5, 3:7])
    with pytest.raises(ValueError, match="channel in 0..C-1"):
        receptive_fields.top_patches(acts, images, channel=3, k=1, field=(4, 2, -1))


def test_measured_field_equals_the_computed_receptive_field_for_alexnet_conv5():
    """The 163 x 163 pixels of AlexNet's conv5 units, measured by gradients, not only computed."""
    model = models.AlexNet(num_classes=10)
    size, stride, offset = receptive_fields.receptive_field(model, "conv5")
    assert (size, stride) == (163, 16)
    probe = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    reached = receptive_fields.measured_field(model, "conv5", probe, 6, 6)
    ys, xs = torch.nonzero(reached, as_tuple=True)
    top = offset + 6 * stride
    assert (ys.min().item(), ys.max().item()) == (max(top, 0), min(top + size - 1, 223))
    assert (xs.min().item(), xs.max().item()) == (max(top, 0), min(top + size - 1, 223))


def test_measured_field_rejects_a_unit_outside_the_maps():
    with pytest.raises(ValueError, match="inside"):
        receptive_fields.measured_field(models.LeNet5(), "conv2", torch.randn(1, 1, 28, 28), 10, 0)
    with pytest.raises(KeyError, match="valid names"):
        receptive_fields.measured_field(models.LeNet5(), "conv9", torch.randn(1, 1, 28, 28), 0, 0)

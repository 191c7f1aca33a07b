import pytest
import torch

from course_lib import layers, models, receptive_fields, trained


def test_lenet1_is_the_published_network():
    net = models.LeNet1()
    assert models.count_parameters(net) == 2578          # the 1989 paper's count
    per_layer = {name: sum(p.numel() for p in m.parameters())
                 for name, m in net.named_children() if any(True for _ in m.parameters())}
    assert per_layer == {"conv1": 104, "pool1": 8, "conv2": 512, "pool2": 24, "fc": 1930}
    assert len(models.LENET1_TABLE) == 12 and sum(len(t) for t in models.LENET1_TABLE) == 20
    assert sorted({len(t) for t in models.LENET1_TABLE}) == [1, 2]      # "one or two" H2 maps each
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_lenet1_simplified_is_fully_connected():
    net = models.LeNet1Simplified()
    assert models.count_parameters(net) == 3246
    shapes = [tuple(p.shape) for p in net.parameters()]
    assert shapes == [(4, 1, 5, 5), (4,), (12, 4, 5, 5), (12,), (10, 192), (10,)]


def test_sparse_conv_equals_a_dense_conv_with_zeros_where_unconnected():
    conv = models.SparseConv2d(4, models.LENET1_TABLE, kernel_size=5)
    dense = conv.weight.detach()
    for o, inputs in enumerate(models.LENET1_TABLE):
        for i in range(4):
            assert (dense[o, i].abs().sum() > 0) == (i in inputs)
    x = torch.randn(2, 4, 12, 12)
    assert torch.allclose(conv(x), torch.nn.functional.conv2d(x, dense, conv.bias), atol=1e-6)
    # an unconnected input map changes nothing in that output map
    y = x.clone()
    y[:, 3] += 5.0
    assert torch.equal(conv(x)[:, 0], conv(y)[:, 0])        # map 0 reads only input map 0
    assert not torch.equal(conv(x)[:, 3], conv(y)[:, 3])    # map 3 reads input map 3
    conv(x).sum().backward()
    assert conv.kernels.grad.shape == (20, 5, 5)
    with pytest.raises(ValueError, match="outside 0..3"):
        models.SparseConv2d(4, ((0, 4),), kernel_size=5)


def test_digit_frame_shrinks_the_digit_to_16_and_centres_it():
    x = torch.full((1, 1, 28, 28), -1.0)
    x[..., 4:24, 4:24] = 1.0            # MNIST's central 20x20 box, filled
    framed = models.DigitFrame()(x)
    assert framed.shape == (1, 1, 28, 28)
    inside = (framed[0, 0] > 0).nonzero()
    assert inside.min(0).values.tolist() == [6, 6] and inside.max(0).values.tolist() == [21, 21]
    assert framed[0, 0, :6].eq(-1).all() and framed[0, 0, 22:].eq(-1).all()   # background kept


def test_subsample_has_a_coefficient_and_bias_per_map():
    s = models.Subsample(3)
    with torch.no_grad():
        s.weight.copy_(torch.tensor([1.0, 2.0, 0.0]))
        s.bias.copy_(torch.tensor([0.0, 0.0, 0.5]))
    x = torch.ones(1, 3, 4, 4) * 0.5
    out = s(x)
    assert out.shape == (1, 3, 2, 2)
    assert torch.allclose(out[0, :, 0, 0], torch.tanh(torch.tensor([0.5, 1.0, 0.5])))


@pytest.mark.parametrize("model", [models.LeNet1, models.LeNet1Simplified])
@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (2, 1, 32, 32), (1, 28, 28)])
def test_lenet1_wrong_shape_is_a_clear_error(model, shape):
    with pytest.raises(ValueError, match=rf"{model.__name__} expects images of shape N x 1 x 28 x 28"):
        model()(torch.zeros(shape))


def test_lenet5_sizes_and_variants():
    assert models.count_parameters(models.LeNet5()) == 61706
    relu = models.LeNet5(activation="relu", pool="max")
    assert isinstance(relu.act1, torch.nn.ReLU) and isinstance(relu.pool1, torch.nn.MaxPool2d)
    assert relu(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="activation must be one of"):
        models.LeNet5(activation="sigmoid")


def test_alexnet_has_the_papers_parameter_count():
    assert models.count_parameters(models.AlexNet()) == 60_965_224
    assert models.count_parameters(models.AlexNet(streams=1)) == 62_378_344


def test_alexnet_streams_are_grouped_convolutions():
    two = models.AlexNet(num_classes=10)
    assert [two.conv2.groups, two.conv3.groups, two.conv4.groups, two.conv5.groups] == [2, 1, 2, 2]
    assert models.AlexNet(num_classes=10, streams=1).conv2.groups == 1
    s0, s1 = two.stream_filters("conv1")
    assert s0.shape == s1.shape == (48, 3, 11, 11) and torch.equal(torch.cat([s0, s1]), two.conv1.weight.detach())
    assert [w.shape[0] for w in two.stream_filters("conv5")] == [128, 128]
    with pytest.raises(KeyError, match="conv1, conv2, conv3, conv4, conv5"):
        two.stream_filters("fc6")


@pytest.mark.parametrize("size", [63, 128, 160, 224])
def test_alexnet_sizes(size):
    net = models.AlexNet(num_classes=10, lrn=False, dropout=0.0).eval()
    assert net(torch.zeros(1, 3, size, size)).shape == (1, 10)


def test_alexnet_minimum_size_and_channels():
    net = models.AlexNet(num_classes=10)
    with pytest.raises(ValueError, match="at least 63x63, got 62x62"):
        net(torch.zeros(1, 3, 62, 62))
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        net(torch.zeros(1, 1, 224, 224))


def test_alexnet_options():
    net = models.AlexNet(num_classes=10, lrn=False, dropout=0.2)
    assert isinstance(net.norm1, torch.nn.Identity) and net.drop6.p == 0.2
    with pytest.raises(ValueError, match="streams must be 1 or 2"):
        models.AlexNet(streams=4)


def test_imagenet_alexnet_loads_or_says_where_to_put_the_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache: the real download is tried
    try:
        net = trained.imagenet_alexnet()
    except RuntimeError as err:
        message = str(err)
        assert "alexnet-owt-7be5be79.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
        assert "could not be downloaded" in message
    else:  # a machine with internet
        assert models.count_parameters(net) == 61_100_840 and not net.training
    (tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth").unlink(missing_ok=True)
    with pytest.raises(RuntimeError, match="is not in torch's hub cache .* and was not downloaded"):
        trained.imagenet_alexnet(download=False)


def test_hub_download_is_quiet_checked_and_leaves_nothing_half_written(tmp_path, monkeypatch, capsys):
    """The real download code on a file the test writes (file:// URL): it lands in torch's hub cache without
    torch's "Downloading ... to <this machine's path>" line; a file whose hash does not match its name is
    refused and leaves nothing in the cache."""
    import hashlib

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    payload = b"weights" * 1000
    digest = hashlib.sha256(payload).hexdigest()
    good = tmp_path / f"net-{digest[:8]}.pth"
    good.write_bytes(payload)
    path = trained._download_to_hub(good.as_uri())
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / good.name and path.read_bytes() == payload
    out = capsys.readouterr()
    assert "Downloading" not in out.out + out.err and str(tmp_path) not in out.out + out.err
    bad = tmp_path / "net-00000000.pth"
    bad.write_bytes(payload)
    with pytest.raises(RuntimeError, match="invalid hash value"):
        trained._download_to_hub(bad.as_uri())
    assert sorted(p.name for p in path.parent.iterdir()) == [good.name]


def test_alexnet_lrn_is_the_papers_formula():
    """b = a / (k + alpha * sum of a^2 over 5 neighbouring channels)^beta, k=2, alpha=1e-4, beta=0.75
    (PyTorch's layer divides its alpha by n, so it must be given 5e-4). With two streams the sum stays
    inside each stream's maps, as on the paper's two GPUs."""
    a = torch.rand(1, 8, 3, 3) * 40

    def paper(a):
        squares = torch.nn.functional.pad(a.pow(2), (0, 0, 0, 0, 2, 2))
        neighbours = sum(squares[:, i:i + a.shape[1]] for i in range(5))
        return a / (2.0 + 1e-4 * neighbours).pow(0.75)

    assert torch.allclose(models.AlexNet(streams=1).norm1(a), paper(a), rtol=1e-5)
    two = models.AlexNet(streams=2).norm1(a)
    assert torch.allclose(two, torch.cat([paper(a[:, :4]), paper(a[:, 4:])], 1), rtol=1e-5)
    assert not torch.allclose(two, paper(a), rtol=1e-5), "the streams' boundary must not be crossed"


def test_alexnet_on_two_devices_is_the_grouped_model_output_for_output():
    """TwoDeviceAlexNet loads the grouped model's state dict as it is and computes the same function,
    forward and backward; saving gives back the same names and shapes."""
    torch.manual_seed(0)
    grouped = models.AlexNet(num_classes=10).eval()
    split = models.TwoDeviceAlexNet(num_classes=10, devices=("cpu", "cpu")).eval()
    assert not torch.allclose(split.conv1.halves[0].weight, grouped.conv1.weight[:48])  # its own init first
    split.load_state_dict(grouped.state_dict())
    saved = split.state_dict()
    assert list(saved) == list(grouped.state_dict())
    assert all(torch.equal(saved[k], v) for k, v in grouped.state_dict().items())
    x = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(grouped(x), split(x), atol=1e-6, rtol=1e-4)
    # forward and backward in float64, where rounding cannot flip a max-pooling choice
    grouped.double(), split.double()
    x = x.double().requires_grad_(True)
    out_g, out_s = grouped(x), split(x)
    assert torch.allclose(out_g, out_s, atol=1e-12, rtol=1e-9)
    (gx_g,) = torch.autograd.grad(out_g[:, 3].sum(), x)
    (gx_s,) = torch.autograd.grad(out_s[:, 3].sum(), x)
    assert torch.allclose(gx_g, gx_s, atol=1e-14, rtol=1e-8)
    # The halves are really separate: conv2's stream 0 reads only conv1's first 48 maps.
    assert split.conv2.halves[0].weight.shape == (128, 48, 5, 5)
    assert split.conv3.halves[1].weight.shape == (192, 256, 3, 3)      # conv3 reads both streams
    with pytest.raises(ValueError, match="two devices"):
        models.TwoDeviceAlexNet(devices=("cpu",))


def test_the_two_device_alexnet_is_handled_like_the_grouped_one():
    """What the library offers the grouped network works on the two-device one: features, the filters
    per stream, receptive fields, conv layer names and weights."""
    from course_lib import measure
    torch.manual_seed(0)
    grouped = models.AlexNet(num_classes=10).eval()
    split = models.TwoDeviceAlexNet(num_classes=10, devices=("cpu", "cpu")).eval()
    split.load_state_dict(grouped.state_dict())
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(split.features(x), grouped.features(x), atol=1e-5)
    for a, b in zip(split.stream_filters("conv1"), grouped.stream_filters("conv1")):
        assert torch.equal(a, b)
    for layer in ("conv1", "pool2", "conv5", "pool5"):
        assert receptive_fields.receptive_field(split, layer) == receptive_fields.receptive_field(grouped, layer)
    assert receptive_fields.receptive_field(split, "conv5")[:2] == (163, 16)
    assert layers.conv_layer_names(split) == layers.conv_layer_names(grouped)
    assert torch.equal(measure.conv_weights(split, "conv4"), measure.conv_weights(grouped, "conv4"))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_alexnet_on_two_gpus_trains():
    model = models.TwoDeviceAlexNet(num_classes=10, devices=("cuda:0", "cuda:1"))
    assert model.conv5.halves[1].weight.device == torch.device("cuda:1")
    x = torch.randn(4, 3, 224, 224, device="cuda:0")
    loss = model(x).logsumexp(1).mean()
    loss.backward()
    assert model.conv1.halves[1].weight.grad is not None


def test_resized_crops_cover_the_asked_share_of_the_image_and_flip_half_the_time():
    from course_lib import augment
    # a horizontal ramp: a crop's width shows in the range of values it keeps, a flip in the slope's sign
    ramp = torch.arange(200).clamp(max=255).to(torch.uint8).repeat(64, 3, 200, 1)
    out = augment.random_resized_crop_flip(ramp, torch.Generator().manual_seed(0), 50, scale=(0.25, 0.25),
                                           ratio=(1, 1))
    assert out.shape == (64, 3, 50, 50) and out.dtype == torch.uint8
    row = out[:, 0, 25].float()
    spans = (row.max(1).values - row.min(1).values) / 199
    assert torch.allclose(spans, torch.full_like(spans, 0.5), atol=0.03)      # width sqrt(0.25) of the image
    flipped = (row[:, 0] > row[:, -1]).float().mean()
    assert 0.3 < flipped < 0.7
    whole = augment.random_resized_crop_flip(ramp[:4], torch.Generator().manual_seed(1), 200, scale=(1, 1),
                                             ratio=(1, 1))
    assert all(torch.equal(w, ramp[0]) or torch.equal(w, ramp[0].flip(-1)) for w in whole)
    with pytest.raises(ValueError, match="scale must be"):
        augment.resized_crop_flip(32, scale=(0, 1))

import pytest
import torch

from course_lib import models


def test_lenet1_is_the_papers_network():
    net = models.LeNet1()
    assert models.count_parameters(net) == 3246
    shapes = [tuple(p.shape) for p in net.parameters()]
    assert shapes == [(4, 1, 5, 5), (4,), (12, 4, 5, 5), (12,), (10, 192), (10,)]
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (2, 1, 32, 32), (1, 28, 28)])
def test_lenet1_wrong_shape_is_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"LeNet1 expects images of shape N x 1 x 28 x 28"):
        models.LeNet1()(torch.zeros(shape))


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
    with pytest.raises(KeyError, match="conv1 ... conv5"):
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


def test_pretrained_alexnet_loads_or_says_where_to_put_the_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache: the real download is tried
    try:
        net = models.pretrained_alexnet()
    except RuntimeError as err:
        message = str(err)
        assert "alexnet-owt-7be5be79.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
        assert "could not be downloaded" in message
    else:  # a machine with internet
        assert models.count_parameters(net) == 61_100_840 and not net.training

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

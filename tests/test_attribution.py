"""course_lib.attribution: each method finds what the network reads, hooks never outlive a call."""
import pytest
import torch
import torch.nn as nn
from captum.attr import Occlusion, Saliency
from scipy.stats import spearmanr

from course_lib import attribution as A
from course_lib import models

TOP_LEFT = (slice(0, 14), slice(0, 14))


class TopLeftMask(nn.Module):
    def forward(self, x):
        return x * (torch.arange(28) < 14).view(-1, 1) * (torch.arange(28) < 14).view(1, -1)


class TopLeftOnly(nn.Module):
    """A small ConvNet whose output depends only on the top-left quadrant of its 28x28 input."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.look = TopLeftMask()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        x = self.look(self.act(self.conv(x)))
        return self.fc(self.pool(x).flatten(1))


@pytest.fixture
def images():
    return torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))


METHODS = {
    "occlusion": lambda m, x, t: A.occlusion(m, x, t, window=4, stride=2),
    "saliency": A.saliency,
    "guided_backprop": A.guided_backprop,
    "grad_cam": lambda m, x, t: A.grad_cam(m, x, t, "look"),
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_puts_its_mass_where_the_network_looks(method, images):
    maps = METHODS[method](TopLeftOnly(), images, 1)
    assert maps.shape == (6, 28, 28) and maps.dtype == torch.float32
    share = A.mass_in(maps, TOP_LEFT)
    assert share.min() > 0.85, f"{method}: only {share.tolist()} of the mass in the top-left quadrant"
    # The control: a quadrant the network never reads gets (almost) nothing.
    assert A.mass_in(maps, (slice(14, 28), slice(14, 28))).max() < 0.05


def test_grad_cam_sees_only_what_its_layer_sees(images):
    """Grad-CAM weighs a layer's maps: one taken before the network throws three quadrants away
    still lights up everywhere (the reason to take the last convolutional layer)."""
    maps = A.grad_cam(TopLeftOnly(), images, 1, "act")
    assert A.mass_in(maps, TOP_LEFT).max() < 0.5


def test_mass_in_fails_on_a_map_spread_everywhere():
    assert A.mass_in(torch.ones(1, 28, 28), TOP_LEFT).item() == pytest.approx(0.25)


def test_occlusion_and_saliency_equal_captum_on_lenet1(images):
    model = models.LeNet1().eval()
    ours = A.occlusion(model, images, 3, window=5, stride=3, baseline=0.0)
    theirs = Occlusion(nn.Sequential(model, nn.Softmax(1))).attribute(
        images, target=3, sliding_window_shapes=(1, 5, 5), strides=(1, 3, 3), baselines=0.0)
    assert torch.allclose(ours, theirs[:, 0], atol=1e-6)
    sal = Saliency(model).attribute(images.clone().requires_grad_(True), target=3)
    assert torch.allclose(A.saliency(model, images, 3), sal.abs()[:, 0])


def test_targets_per_image_are_used(images):
    model = models.LeNet1().eval()
    per_image = A.saliency(model, images[:2], torch.tensor([2, 7]))
    assert torch.allclose(per_image[0], A.saliency(model, images[:1], 2)[0])
    assert torch.allclose(per_image[1], A.saliency(model, images[1:2], 7)[0])


def hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", {})) for m in model.modules())


def test_hooks_mode_and_inplace_relus_are_restored_also_after_an_error(images):
    model = models.AlexNet(num_classes=5)
    model.train()
    x = torch.randn(1, 3, 224, 224)
    A.guided_backprop(model, x, 1)
    A.grad_cam(model, x, 1, "act5")
    assert hooks(model) == 0 and model.training and model.act1.inplace

    broken = models.AlexNet(num_classes=5)
    broken.eval()
    first = True

    def explode(module, args, out):
        nonlocal first
        if not first:
            raise RuntimeError("boom")
        first = False

    handle = broken.conv5.register_forward_hook(explode)  # the first (checking) forward passes
    for call in (lambda: A.grad_cam(broken, x, 1, "act5"), lambda: A.guided_backprop(broken, x, 1)):
        first = True
        with pytest.raises(RuntimeError, match="boom"):
            call()
        assert hooks(broken) == 1, "only the test's own hook may remain"
        assert not broken.training and broken.act1.inplace
    handle.remove()


@pytest.mark.parametrize("call, message", [
    (lambda m, x: A.saliency(m, x[0], 1), "N x C x H x W"),
    (lambda m, x: A.saliency(m, (x * 255).to(torch.uint8), 1), "as float N x C x H x W .*loader.normalize"),
    (lambda m, x: A.saliency(m, x, 10), "between 0 and 9"),
    (lambda m, x: A.saliency(m, x, [1, 2]), "one int per image"),
    (lambda m, x: A.saliency(m, x, 1.5), "one int per image"),
    (lambda m, x: A.saliency(m, x, target=True), "class index"),
    (lambda m, x: A.grad_cam(m, x, 1, "conv9"), "valid names"),
    (lambda m, x: A.grad_cam(m, x, 1, nn.Conv2d(1, 1, 1)), "module of the model"),
    (lambda m, x: A.grad_cam(m, x, 1, "fc"), "spatial maps"),
    (lambda m, x: A.occlusion(m, x, 1, window=0, stride=1), "window must be a positive int"),
    (lambda m, x: A.occlusion(m, x, 1, window=3, stride=2.0), "stride must be a positive int"),
    (lambda m, x: A.occlusion(m, x, 1, window=40, stride=1), "larger than the images"),
])
def test_bad_inputs_name_what_was_expected(call, message, images):
    with pytest.raises((ValueError, KeyError, TypeError), match=message):
        call(models.LeNet1(), images)


def test_rank_correlation():
    a = torch.arange(16.0).view(1, 4, 4)
    ties = torch.tensor([[[0.0, 0.0], [1.0, 2.0]]])
    expected = spearmanr(ties.flatten(), ties.flip(-2).flip(-1).flatten()).statistic
    assert A.rank_correlation(ties, ties.flip(-2).flip(-1)).item() == pytest.approx(expected)
    assert A.rank_correlation(a, a * 3 + 1).item() == pytest.approx(1.0)
    assert A.rank_correlation(a, -a).item() == pytest.approx(-1.0)
    assert A.rank_correlation(a, torch.zeros_like(a)).item() == 0.0
    with pytest.raises(ValueError, match="same shape"):
        A.rank_correlation(a, a[:, :2])
    # a mask leaves out pixels: two maps that agree only where both are 0 no longer correlate
    x, y = torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)
    x[0, 1:3, 1:3], y[0, 1:3, 1:3] = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[4.0, 3.0], [2.0, 1.0]])
    inside = torch.zeros(4, 4, dtype=torch.bool)
    inside[1:3, 1:3] = True
    assert A.rank_correlation(x, y).item() > 0.4                  # the 12 tied zeros agree
    assert A.rank_correlation(x, y, inside).item() == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="bool mask of shape"):
        A.rank_correlation(x, y, inside[:2])


def test_cascading_randomization_separates_weight_blind_methods(images):
    """The check's control: a "method" that ignores the weights (the image itself) stays at 1, while
    the gradient of the randomized network moves away."""
    torch.manual_seed(0)
    model = models.LeNet5(activation="relu")
    methods = {"image": lambda m, x, t: x[:, 0].abs(), "saliency": A.saliency}
    before = [p.detach().clone() for p in model.parameters()]          # taken before the call, not after it
    result = A.cascading_randomization(model, images, 1, methods, ["fc3", "fc2", "fc1", "conv2", "conv1"])
    assert result["image"] == [pytest.approx(1.0)] * 5
    assert result["saliency"][-1] < 0.5
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "the model must not change"
    with pytest.raises(ValueError, match="no weights"):
        A.cascading_randomization(model, images, 1, methods, ["act1"])

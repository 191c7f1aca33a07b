"""Feature visualization and adversarial images on networks built so that the answer is known, each next
to a control that must fail."""

import pytest
import torch
import torch.nn as nn

from course_lib import digits, env, made_images, models, train

PLAIN = {"mean": (0.0,), "std": (1.0,)}      # no normalization: the networks below read pixels as they are


def edge_detectors() -> nn.Module:
    """One conv layer, two 5 x 5 filters: channel 0 a vertical edge (dark left, bright right), channel 1 a
    horizontal one."""
    conv = nn.Conv2d(1, 2, 5, bias=False)
    edge = torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0]).expand(5, 5)
    with torch.no_grad():
        conv.weight.copy_(torch.stack([edge, edge.T])[:, None])
    return nn.Sequential(conv)


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()


def test_the_image_made_for_an_edge_unit_is_that_edge_and_not_the_other():
    model = edge_detectors()
    image, curve = made_images.maximize(model, "0", 0, size=5, steps=150, lr=0.1, seed=0, **PLAIN)
    assert image.shape == (1, 5, 5) and 0 <= image.min() and image.max() <= 1
    assert curve[-1] > curve[0] + 1.0, "the activation must rise"
    vertical, horizontal = model[0].weight[:, 0].detach()
    assert correlation(image[0], vertical) > 0.9
    assert abs(correlation(image[0], horizontal)) < 0.3, "the control: the other unit's filter"
    assert all(p.grad is None for p in model.parameters())


def test_regularizers_make_a_smoother_image_than_none():
    from course_lib import measure
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
    plain, _ = made_images.maximize(model, "2", 1, size=24, steps=60, seed=1, **PLAIN)
    smooth, _ = made_images.maximize(model, "2", 1, size=24, steps=60, seed=1, jitter=2, blur=1.0, **PLAIN)
    sharp, soft = (measure.filter_smoothness(img[None]).item() for img in (plain, smooth))
    assert soft > sharp, f"blur and jitter should remove high frequencies: {soft:.2f} vs {sharp:.2f}"


def test_fgsm_on_a_linear_classifier_moves_every_pixel_by_the_sign_of_the_weight_difference():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    images = 0.3 + 0.4 * torch.rand(3, 1, 4, 4)
    labels = torch.tensor([0, 1, 0])
    adv = made_images.fgsm(model, images, labels, 0.05, **PLAIN)
    w = model[1].weight.detach()
    for x, a, y in zip(images, adv, labels):
        expected = (w[1 - y] - w[y]).sign().view(1, 4, 4)       # away from the true class, towards the other
        assert torch.allclose((a - x) / 0.05, expected, atol=1e-5)
        assert not torch.allclose((a - x) / 0.05, -expected, atol=1e-5), "the control: the opposite sign"


def test_attacks_stay_in_their_budget_and_in_pixel_range():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    images = torch.rand(4, 1, 4, 4)
    labels = torch.tensor([0, 1, 1, 0])
    for adv in (made_images.fgsm(model, images, labels, 0.2, **PLAIN),
                made_images.pgd(model, images, labels, 0.2, **PLAIN),
                made_images.random_sign_noise(images, 0.2)):
        assert adv.shape == images.shape and adv.min() >= 0 and adv.max() <= 1
        assert (adv - images).abs().max() <= 0.2 + 1e-6


@pytest.fixture(scope="module")
def lenet1():
    x, y = digits.mnist_sample("train")
    env.seed_everything(0)
    model = models.LeNet1()
    train.fit(model, (x, y), epochs=3, lr=0.3, progress=False, device="cpu")
    xt, yt = digits.mnist_sample("test")
    return model.eval(), xt[:300].float() / 255, yt[:300]


def test_fgsm_and_pgd_flip_far_more_digits_than_random_noise_of_the_same_size(lenet1):
    model, images, labels = lenet1
    noise = made_images.flipped_share(model, images, labels, "noise", 0.1)
    fgsm = made_images.flipped_share(model, images, labels, "fgsm", 0.1)
    pgd = made_images.flipped_share(model, images, labels, "pgd", 0.1)
    assert fgsm > 5 * max(noise, 0.02) and pgd >= fgsm - 0.02, (noise, fgsm, pgd)
    smallest = made_images.smallest_epsilon(model, images[:20], labels[:20], [0.02, 0.05, 0.1, 0.2, 0.3])
    assert smallest.shape == (20,) and (smallest[torch.isfinite(smallest)] <= 0.3).all()


def test_bad_inputs_are_named():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"float pixels in \[0, 1\]"):
        made_images.fgsm(model, (x * 255).byte(), [0, 1], 0.1)
    with pytest.raises(ValueError, match="epsilon must be a number in"):
        made_images.fgsm(model, x, [0, 1], 2)
    with pytest.raises(ValueError, match="one integer label per image"):
        made_images.fgsm(model, x, [0], 0.1, **PLAIN)
    with pytest.raises(ValueError, match="attack must be one of 'fgsm', 'pgd', 'noise'"):
        made_images.flipped_share(model, x, [0, 1], "cw", 0.1, **PLAIN)
    with pytest.raises(ValueError, match="channel must be between 0 and 1"):
        made_images.maximize(edge_detectors(), "0", 5, size=5, steps=1, **PLAIN)
    with pytest.raises(KeyError, match="Unknown layer 'conv9'"):
        made_images.maximize(edge_detectors(), "conv9", 0, size=5, steps=1, **PLAIN)

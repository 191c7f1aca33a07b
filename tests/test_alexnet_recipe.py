"""The reference AlexNets' recipe (course_lib/instructor/alexnet_recipe.py): the initial network rebuilt from a
seed, LRN as a band equal to the layer it replaces, conv1's cosine, and the sizes the build refuses."""

import pytest
import torch

from course_lib import models
from course_lib.instructor import alexnet_recipe, build_references
from course_lib.instructor.alexnet_recipe import conv1_cosine, initial_network


@pytest.mark.parametrize("streams", [1, 2])
def test_alexnets_band_lrn_is_torchs_lrn_on_each_stream_apart(streams):
    torch.manual_seed(0)
    x = torch.rand(3, 96, 9, 9) * 40          # large enough that the normalization matters
    torch_lrn = torch.nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)
    band = models.StreamLocalResponseNorm(streams, size=5, alpha=5e-4, beta=0.75, k=2.0)
    expected = torch.cat([torch_lrn(part) for part in x.chunk(streams, 1)], 1)
    assert torch.allclose(band(x), expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(band(x), x / 2 ** 0.75, rtol=1e-3)      # it does normalize by the neighbours
    if streams == 2:       # the sum stays inside a stream: not the one-stream layer
        assert not torch.allclose(band(x), torch_lrn(x), rtol=1e-6, atol=1e-6)


def test_the_initial_network_comes_back_from_its_seed_with_conv1_from_n_0_0005():
    a, b, c = initial_network(2, 0), initial_network(2, 0), initial_network(2, 1)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert conv1_cosine(a, b) == pytest.approx(1.0) and abs(conv1_cosine(a, c)) < 0.05
    assert a.conv1.weight.std().item() == pytest.approx(alexnet_recipe.RECIPE["conv1_std"], rel=0.02)
    # its state dict is models.AlexNet's: the weights it learns load into the package's network as they are
    models.AlexNet(num_classes=10, streams=2).load_state_dict(a.state_dict())


def test_a_reference_build_refuses_a_size_where_fc6_cannot_fold(tmp_path, monkeypatch):
    """At 112 px pool5 is 2 x 2: the folded fc6 would be another function, so the build stops before training."""
    import dataclasses

    from course_lib import env
    smoke = env.profile("smoke")
    monkeypatch.setattr(env, "profile", lambda name: dataclasses.replace(smoke, image_size=112))
    with pytest.raises(ValueError, match="pool5 is 2 x 2"):
        build_references.build("alexnet-imagenette", profile="smoke", epochs=1, out=tmp_path)
    assert not list(tmp_path.iterdir())

"""The shipped format of the reference AlexNets (course_lib/models/packed_weights.py): fc6 folded at 128 px, fc6 and
fc7 in int8 with a scale a row, and the round trip back to a network."""

import pytest
import torch

from course_lib import models
from course_lib.models.packed_weights import fold_fc6, pack, quantize_rows, unfold_fc6, unpack


def _trained_looking(streams=2, seed=0):
    """An AlexNet whose fc6 weights differ at every one of the 6 x 6 positions (as trained ones do)."""
    torch.manual_seed(seed)
    model = models.AlexNet(num_classes=10, streams=streams).eval()
    with torch.no_grad():
        for layer in (model.fc6, model.fc7, model.fc8):
            layer.weight.normal_(0, 0.02)
            layer.bias.normal_(0, 0.1)
    return model


def _fc6_outputs(model, x):
    return model.fc6(model.flatten(model.avgpool(model.features(x))))


@pytest.mark.parametrize("size, exact", [(64, True), (94, True), (127, True), (128, True), (158, True),
                                         (126, False), (224, False)])
def test_the_unfolded_fc6_keeps_its_outputs_exactly_where_pool5_is_1x1_or_3x3(size, exact):
    """Exact at 63-94 px (pool5 1 x 1) and 127-158 px (3 x 3); the control: at 126 px (pool5 2 x 2) and
    224 px (6 x 6) the folded weights are another function."""
    model = _trained_looking()
    x = torch.randn(2, 3, size, size)
    before = _fc6_outputs(model, x)
    with torch.no_grad():
        model.fc6.weight.copy_(unfold_fc6(fold_fc6(model.fc6.weight)))
    assert torch.allclose(_fc6_outputs(model, x), before, atol=1e-4, rtol=1e-4) == exact


def test_quantized_rows_stay_within_half_a_step_and_keep_each_rows_largest_weight():
    w = torch.randn(64, 300) * torch.linspace(0.01, 3, 64)[:, None]
    w[5] = 0
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8 and scale.dtype == torch.float32 and scale.shape == (64,)
    back = q.float() * scale.float()[:, None]
    assert (back - w).abs().max(dim=1).values.le(scale.float() * 0.5 + 1e-6).all()
    assert q.abs().amax(dim=1)[torch.arange(64) != 5].eq(127).all() and back[5].eq(0).all()
    tiny = torch.randn(4, 300) * 1e-6            # a float16 scale would be subnormal here
    q, scale = quantize_rows(tiny)
    assert ((q.float() * scale[:, None] - tiny).abs() <= scale[:, None] * 0.5 + 1e-12).all()


@pytest.mark.parametrize("streams", [1, 2])
def test_a_packed_network_unpacks_to_nearly_the_same_scores_at_128_px(streams):
    model = _trained_looking(streams)
    packed = pack(model.state_dict())
    assert {"fc6.weight.int8", "fc6.weight.scale", "fc7.weight.int8"} <= set(packed)
    assert packed["fc6.weight.int8"].shape == (4096, 256 * 9)
    assert all(v.dtype == torch.float16 for k, v in packed.items() if not k.endswith((".int8", ".scale")))
    assert packed["fc7.weight.scale"].dtype == torch.float32
    size = sum(v.numel() * v.element_size() for v in packed.values())
    assert size < 35e6, f"{size / 1e6:.1f} MB"
    again = models.AlexNet(num_classes=10, streams=streams).eval()
    again.load_state_dict(unpack(packed))          # strict: every layer is there
    x = torch.randn(4, 3, 128, 128)
    with torch.no_grad():
        a, b = model(x), again(x)
    assert (a - b).abs().max() < 0.02 * a.abs().max()
    assert a.argmax(1).eq(b.argmax(1)).all()


def test_unpack_names_a_missing_scale():
    packed = pack(_trained_looking().state_dict())
    del packed["fc7.weight.scale"]
    with pytest.raises(ValueError, match="fc7.weight.scale"):
        unpack(packed)


def test_fold_refuses_weights_of_another_shape():
    with pytest.raises(ValueError, match="units x 9216"):
        fold_fc6(torch.zeros(4, 100))
    with pytest.raises(ValueError, match="units x 2304"):
        unfold_fc6(torch.zeros(4, 100))

"""Lesson 09's library: AlexNet with the decade's changes, multiply-adds, the one-cycle schedule, the
learning-rate range test, activation histograms and the paired "one change at a time" table."""


import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from course_lib import layers, train
from course_lib.claims import decade_transfer as moving
from course_lib.claims import next_decade as decade
from course_lib.claims.rules import paired_table
from course_lib.models import alexnet_variants as variants


@pytest.mark.parametrize("change", list(variants.ARCHITECTURE_CHANGES) + ["all"])
@pytest.mark.parametrize("size", [64, 96])
def test_every_variant_maps_images_to_logits_and_learns(change, size):
    kwargs = variants.ALL_CHANGES if change == "all" else variants.ARCHITECTURE_CHANGES[change]
    torch.manual_seed(0)
    model = variants.AlexNetVariant(num_classes=7, image_size=size, width=0.125, **kwargs)
    x = torch.randn(4, 3, size, size)
    assert model(x).shape == (4, 7)
    y = torch.randint(0, 7, (4,))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_a_change_that_is_off_leaves_the_alexnet_layers():
    plain = variants.AlexNetVariant(width=0.125)
    assert isinstance(plain.norm1, nn.LocalResponseNorm) and isinstance(plain.bn1, nn.Identity)
    assert plain.conv1.kernel_size == (11, 11) and plain.conv2.kernel_size == (5, 5)
    assert hasattr(plain, "fc6") and not hasattr(plain, "fc")
    modern = variants.AlexNetVariant(width=0.125, **variants.ALL_CHANGES)
    assert isinstance(modern.norm1, nn.Identity) and isinstance(modern.bn1, nn.BatchNorm2d)
    assert all(m.kernel_size == (3, 3) for m in modern.conv1.modules() if isinstance(m, nn.Conv2d))
    assert hasattr(modern, "fc") and not hasattr(modern, "fc6")


def test_the_residual_block_adds_conv4s_input():
    model = variants.AlexNetVariant(width=0.125, residual=True).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        full = model.features(x)
        nn.init.zeros_(model.conv4.weight), nn.init.zeros_(model.conv4.bias)
        identity = model.features(x)
        model.residual = False
        zeroed = model.features(x)
    assert not torch.allclose(identity, zeroed)      # the block passes conv3's output on when conv4 is zero
    assert not torch.allclose(full, identity)


def test_variants_refuse_bad_sizes():
    with pytest.raises(ValueError, match="at least 63 px"):
        variants.AlexNetVariant(image_size=32)
    with pytest.raises(ValueError, match="width"):
        variants.AlexNetVariant(width=0)


def test_multiply_adds_counts_convolutions_and_linear_layers_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    expected = (4 * 8 * 8) * 3 * 3 * 3 + 4 * 8 * 8 * 5
    assert variants.multiply_adds(model, (3, 8, 8)) == expected
    grouped = nn.Conv2d(4, 4, 3, padding=1, groups=2)
    assert variants.multiply_adds(grouped, (4, 8, 8)) == 4 * 8 * 8 * 2 * 9
    # 3x3 stacks cost less than 11x11 and 5x5, global average pooling far less than the fc head
    base = variants.AlexNetVariant(width=0.25)
    assert variants.multiply_adds(variants.AlexNetVariant(width=0.25, gap=True), (3, 64, 64)) < \
        variants.multiply_adds(base, (3, 64, 64))


def test_one_cycle_is_torchs_one_cycle_lr():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    total = 37
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=total, cycle_momentum=False)
    expected = []
    for _ in range(total):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = train.lr_schedule(0.1, 1, total, schedule="one-cycle")
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-12)
    cosine = train.lr_schedule(0.1, 1, total)
    assert cosine != pytest.approx(expected)                       # the control: the course's schedule is another
    with pytest.raises(ValueError, match="schedule must be one of"):
        train.lr_schedule(0.1, 1, total, schedule="step")


def _blobs(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 8, generator=g) + 2.0 * y[:, None].float()
    return torch.utils.data.TensorDataset(x, y)


def test_lr_range_test_finds_a_rate_stops_when_the_loss_blows_up_and_changes_nothing():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    found = train.lr_range_test(model, _blobs(), start=1e-4, end=100.0, steps=80, batch_size=32)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert found["blew_up"] is not None and len(found["lrs"]) < 80     # 100 is far too high for this problem
    assert 1e-4 < found["steepest"] < found["blew_up"]
    assert found["lrs"] == sorted(found["lrs"])
    gentle = train.lr_range_test(model, _blobs(), start=1e-5, end=1e-3, steps=20, batch_size=32)
    assert gentle["blew_up"] is None and len(gentle["lrs"]) == 20       # the control: low rates never blow up
    with pytest.raises(ValueError, match="0 < start < end"):
        train.lr_range_test(model, _blobs(), start=1.0, end=0.1)


def test_activation_histograms_count_training_passes_only_and_clean_up():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
    with layers.ActivationHistograms(model, ["1"], bins=10, high=5.0) as rec:
        model.train()
        for _ in range(3):
            model(torch.randn(4, 8))
        model.eval()
        model(torch.randn(4, 8))
    assert rec.histograms["1"].shape == (3, 10)
    assert rec.histograms["1"].sum(1).tolist() == [64.0] * 3           # every value counted once
    assert len(rec.means["1"]) == 3 and all(0.0 <= z <= 1.0 for z in rec.zeros["1"])
    assert not model[1]._forward_hooks
    with pytest.raises(RuntimeError), layers.ActivationHistograms(model, ["1"]):
        raise RuntimeError("training failed")
    assert not model[1]._forward_hooks


def test_paired_table_calls_only_changes_that_beat_the_spread():
    values = {"base": [0.50, 0.52, 0.48], "better": [0.60, 0.63, 0.57], "noise": [0.51, 0.50, 0.49],
              "worse": [0.40, 0.41, 0.39]}
    rows = {r["change"]: r for r in paired_table(values, "base", min_change=0.01)}
    assert rows["better"]["better"] and rows["better"]["beats_spread"]
    assert not rows["noise"]["beats_spread"]
    assert rows["worse"]["beats_spread"] and not rows["worse"]["better"]
    assert not rows["base"]["beats_spread"] and rows["better"]["diff"] == pytest.approx(0.1)
    lower = {r["change"]: r for r in paired_table(values, "base", 0.01, higher=False)}
    assert lower["worse"]["better"] and not lower["better"]["better"]


def test_overfit_one_batch_catches_softmax_applied_twice():
    torch.manual_seed(0)
    images, labels = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8), torch.arange(16) % 10
    make = lambda: nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 64), nn.ReLU(), nn.Linear(64, 10))
    right = decade.overfit_one_batch(make(), images, labels, steps=100)
    twice = decade.overfit_one_batch(make(), images, labels, steps=100, softmax_twice=True)
    assert right[-1] < 0.1 * right[0]                 # a correct network memorizes one batch
    assert twice[-1] > 0.5 * twice[0]                 # the planted bug: the loss cannot get near zero


def test_transfer_measures_the_validation_images_once_a_run(monkeypatch):
    """With 10 images a class an epoch is one step, so a run is hundreds of epochs: measuring the validation
    images after each made the cpu profile's transfer cell run past an hour. Each run measures them once."""
    from course_lib import env

    prof = env.profile("smoke")
    d = decade.decade_data(prof)
    calls, real_fit = [], train.fit
    monkeypatch.setattr(train, "fit",
                        lambda model, data, val=None, **kw: calls.append(val) or real_fit(model, data, val, **kw))
    moved = moving.transfer(d, prof, seeds=1, pretrain_lr=0.02, per_class=(2,), progress=False)
    assert len(calls) == 3 and all(v is None for v in calls), \
        "pretraining, fine-tuning, scratch: no per-epoch validation"
    assert set(moved["rows"][2]) == {"probe", "fine-tune", "scratch"}
    # the control: the curves' runs of the table still measure after every epoch
    calls.clear()
    decade.decade_run(decade.BASELINE, d, prof, 0, every_epoch=True, epochs=1)
    assert calls and calls[0] is not None


# --- the fair experiment: LRN, the 2012 initialization, rates chosen apart, the control, the rule on noise ----

@pytest.mark.parametrize("shape", [(4, 7, 5, 5), (2, 3, 4, 4), (3, 48, 9, 9)])
@pytest.mark.parametrize("size", [5, 4, 3])
def test_band_lrn_is_torchs_lrn_forward_and_backward(shape, size):
    torch.manual_seed(0)
    x = (torch.randn(shape, dtype=torch.float64) * 20).requires_grad_()
    ours, theirs = variants.BandLocalResponseNorm(size, 5e-4, 0.75, 2.0), nn.LocalResponseNorm(size, 5e-4, 0.75, 2.0)
    weight = torch.randn(shape, dtype=torch.float64)
    (g_ours,) = torch.autograd.grad((ours(x) * weight).sum(), x)
    (g_theirs,) = torch.autograd.grad((theirs(x) * weight).sum(), x)
    assert torch.allclose(ours(x), theirs(x), rtol=1e-10, atol=1e-12)
    assert torch.allclose(g_ours, g_theirs, rtol=1e-10, atol=1e-12)
    # the control: a band one map narrower is another normalization
    narrower = variants.BandLocalResponseNorm(size - 1 if size > 1 else 2, 5e-4, 0.75, 2.0)
    assert not torch.allclose(narrower(x), theirs(x), rtol=1e-10, atol=1e-12)


def test_the_2012_initialization_is_the_papers():
    torch.manual_seed(0)
    old = variants.AlexNetVariant(image_size=96, width=0.5, init="2012")
    new = variants.AlexNetVariant(image_size=96, width=0.5)
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        weight, bias = getattr(old, name).weight, getattr(old, name).bias
        scale = 255 * 0.226 if name == "conv1" else 1.0      # conv1 reads standardized pixels: see the next test
        assert weight.std().item() == pytest.approx(0.01 * scale, rel=0.1), name
        assert torch.all(bias == (1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0)), name
    # the control: He's scale for conv1 (fan-out 96 x 11 x 11 at width 0.5 is 48 x 121) is another start
    assert new.conv1.weight.std().item() == pytest.approx(math.sqrt(2 / (48 * 121)), rel=0.1)
    assert torch.all(new.conv2.bias == 0)
    with pytest.raises(ValueError, match="init must be one of 'he', '2012'"):
        variants.AlexNetVariant(init="xavier")


def test_hold_out_and_tuning_set_never_touch_the_reported_validation_images():
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 3, 8, 8).contiguous()
    labels = torch.arange(4).repeat_interleave(10)
    d = _Data(train_images=images, train_labels=labels, val_images=torch.zeros(6, 3, 6, 6, dtype=torch.uint8),
              val_labels=torch.zeros(6, dtype=torch.long))
    tune = decade.hold_out(d, 0.25, seed=0)
    fit_ids = set(tune.train_images[:, 0, 0, 0].tolist())
    held_ids = set(tune.val_images[:, 0, 0, 0].tolist())
    assert len(fit_ids) == 30 and len(held_ids) == 10 and not fit_ids & held_ids
    assert tune.val_images.shape[-1] == 6                                    # centre crops at the table's size
    assert held_ids != set(decade.hold_out(d, 0.25, seed=1).val_images[:, 0, 0, 0].tolist())
    with pytest.raises(ValueError, match="leaves images on both sides"):
        decade.hold_out(d, 1.0)
    few = moving.tuning_set(d, per_class=2, tune_per_class=3, seed=0)
    few_ids, held = set(few.train_images[:, 0, 0, 0].tolist()), set(few.val_images[:, 0, 0, 0].tolist())
    assert len(few_ids) == 8 and len(held) == 12 and not few_ids & held
    small = moving.tuning_set(d, per_class=2, tune_per_class=50, seed=0)     # at most half a class is held out
    assert len(small.val_labels) == 20 and len(small.train_labels) == 8


class _Data:
    """A stand-in for ImagenetteData (what hold_out, tuning_set and choose_rates read)."""

    def __init__(self, **parts):
        self.classes = [f"c{i}" for i in range(4)]
        self.__dict__.update(parts)

    def _replace(self, **parts):
        new = _Data()
        new.__dict__.update({**self.__dict__, **parts})
        return new


def _scripted(monkeypatch, score):
    """decade_run replaced by ``score(change, lr, seed)`` (raising TrainingDiverged where it returns None):
    the choice of rates and the table's pairing, tested without training."""
    calls = []

    def run(change, d, prof, seed, **kw):
        calls.append((change, kw.get("lr"), seed))
        assert not (d.val_images == 200).any(), "a choice or a run saw the reported validation images"
        value = score(change, kw.get("lr"), seed)
        if value is None:
            raise train.TrainingDiverged("diverged")
        history = train.History(epochs=[{"epoch": 1, "seconds": 1.0, "val_accuracy": value}])
        return {"accuracy": value, "history": history, "parameters": 1, "multiply_adds": 1, "seconds": 1.0,
                "training_seconds": 1.0, "model": None}
    monkeypatch.setattr(decade, "decade_run", run)
    return calls


def _tiny(reported=False):
    """40 training images, and 8 validation images marked 200 (``reported``: a run may see them, a choice not)."""
    images = torch.zeros(40, 3, 8, 8, dtype=torch.uint8)
    return _Data(train_images=images, train_labels=torch.arange(4).repeat_interleave(10),
                 val_images=torch.full((8, 3, 6, 6), 200 if not reported else 1, dtype=torch.uint8),
                 val_labels=torch.zeros(8, dtype=torch.long))


def test_each_change_gets_its_best_rate_a_diverged_rate_never_and_the_control_alexnets(monkeypatch):
    from course_lib import env
    prof = env.profile("smoke")
    best = {decade.BASELINE: 0.05, "no LRN": 0.2}
    calls = _scripted(monkeypatch, lambda change, lr, seed: None if lr == 0.8 else 1 - abs(math.log(lr / best[change])))
    rates = decade.choose_rates(_tiny(), prof, changes=[decade.BASELINE, "no LRN", decade.CONTROL],
                                rates=(0.05, 0.2, 0.8), progress=False)
    assert rates[decade.BASELINE]["best"] == 0.05 and rates["no LRN"]["best"] == 0.2
    assert math.isnan(rates["no LRN"]["scores"][0.8])                      # diverged: scored NaN, never chosen
    assert rates[decade.CONTROL] is rates[decade.BASELINE]                   # the control is AlexNet: its rate
    assert {c for c, _, _ in calls} == {decade.BASELINE, "no LRN"} and len(calls) == 6
    assert {s for _, _, s in calls} == {2 * prof.next_seeds}       # a start no reported run (nor the control) has
    calls.clear()
    one = decade.choose_rates(_tiny(), prof, changes=["no LRN"], rates=(0.02,), progress=False)
    assert not calls and one["no LRN"]["best"] == 0.02                      # one rate: nothing trained


def test_the_control_row_trains_alexnet_on_seeds_the_baseline_did_not_use(monkeypatch):
    from course_lib import env
    prof = env.profile("smoke")
    calls = _scripted(monkeypatch, lambda change, lr, seed: 0.3 + 0.01 * seed + (0.2 if change == "no LRN" else 0))
    rates = {c: {"best": lr} for c, lr in ((decade.BASELINE, 0.05), (decade.CONTROL, 0.05), ("no LRN", 0.2))}
    rows = {r["change"]: r for r in decade.next_decade(_tiny(reported=True), prof, 3, rates,
                                                       changes=[decade.BASELINE, decade.CONTROL, "no LRN"],
                                                       progress=False)}
    seeds = {c: sorted(s for cc, _, s in calls if cc == c) for c in rates}
    assert seeds[decade.BASELINE] == seeds["no LRN"] == [0, 1, 2] and seeds[decade.CONTROL] == [3, 4, 5]
    assert {lr for c, lr, _ in calls if c == "no LRN"} == {0.2} and rows["no LRN"]["lr"] == 0.2
    assert rows["no LRN"]["better"] and rows["no LRN"]["curve"]["top1"] == [0.5]
    assert rows[decade.CONTROL]["diff"] == pytest.approx(0.03)


def test_the_rules_rate_on_noise_is_what_the_rule_does_on_noise():
    rates = [decade.rule_on_noise(n, trials=40_000) for n in (3, 4, 5, 8)]
    assert rates == sorted(rates, reverse=True) and 0.08 < rates[0] < 0.13 and 0.008 < rates[2] < 0.025
    # the control: the table's own rule, run on pure noise at 4 seeds, fires as often as the simulation says
    rng = np.random.default_rng(1)
    fired = 0
    for _ in range(4000):
        base = rng.standard_normal(4)
        rows = paired_table({"base": base.tolist(), "noise": (base + rng.standard_normal(4)).tolist()}, "base",
                            min_change=0.0)
        fired += rows[1]["beats_spread"]
    assert abs(fired / 4000 - rates[1]) < 0.015


def test_the_2012_start_barely_tells_images_apart_by_conv5_and_hardly_moves_conv1():
    """Lesson 09 asserts it on Imagenette; here on random images, with its control: two He starts agree."""
    from course_lib import layers

    x = torch.randn(32, 3, 96, 96)
    y = torch.arange(32) % 10
    spread, step = {}, {}
    for init in ("he", "2012", "he again"):
        torch.manual_seed(len(spread))
        net = variants.AlexNetVariant(image_size=96, width=0.25, init=init.split()[0]).eval()
        _, acts = layers.record_batch(net, x, ["act5"])
        spread[init] = acts["act5"].std(0).mean().item()
        nn.functional.cross_entropy(net(x), y).backward()
        step[init] = (net.conv1.weight.grad.norm() / net.conv1.weight.norm()).item()
    assert spread["2012"] < 0.5 * spread["he"] and step["2012"] < 0.01 * step["he"]
    assert 0.5 < spread["he again"] / spread["he"] < 2 and 0.1 < step["he again"] / step["he"] < 10   # the control


def test_the_2012_start_scales_conv1_to_the_papers_raw_pixels():
    torch.manual_seed(0)
    net = variants.AlexNetVariant(image_size=96, width=1.0, init="2012")
    per_colour = net.conv1.weight.std((0, 2, 3))
    assert per_colour.tolist() == pytest.approx([0.01 * 255 * s for s in (0.229, 0.224, 0.225)], rel=0.05)
    stacks = variants.AlexNetVariant(image_size=96, width=0.25, init="2012", small_kernels=True)
    assert stacks.conv1[0].weight.std().item() > 0.5 and stacks.conv1[2].weight.std().item() < 0.02


def test_band_lrn_keeps_float32_under_bfloat16_autocast_and_takes_channels_last():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 7, 7) * 30
    exact = nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0)(x.double())
    ours = variants.BandLocalResponseNorm(5, 5e-4, 0.75, 2.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = ours(x)                                   # float32 input: its denominator is not rounded to bf16
    assert y.dtype == torch.float32 and (y.double() - exact).abs().max() < 1e-4
    last = ours(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(last, ours(x), atol=1e-6)
    with pytest.raises(ValueError, match="N x C x H x W"):
        ours(torch.zeros(2, 16, 7))

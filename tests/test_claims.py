"""Each claim check of the course fails on its control, and holds where the claim is real.

A check that cannot fail is no test of a claim: here every rule of ``course_lib.claims`` is run on a
control (two untrained networks, a sweep of small rates, networks that diverged) and must say
"not reproduced".
"""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import claims, digits, measure

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sample():
    x, y = digits.mnist_sample("train")
    xt, yt = digits.mnist_sample("test")
    return (x[:1000], y[:1000]), (xt[:300], yt[:300]), xt[:100]


def test_check_rise_needs_every_seed_and_a_margin_over_the_spread():
    assert claims.check_rise([0.1, 0.1, 0.1], [0.5, 0.52, 0.48])["reproduced"]
    assert not claims.check_rise([0.1, 0.1, 0.1], [0.5, 0.5, 0.05])["reproduced"]    # one seed fell
    assert not claims.check_rise([0.1, 0.1, 0.1], [0.2, 0.9, 0.15])["reproduced"]    # spread > half the rise
    assert not claims.check_rise([0.1, 0.1], [0.105, 0.11])["reproduced"]            # below min_rise
    v = claims.check_rise([0.1, 0.2], [0.3, 0.5])
    assert (v["k"], v["n"], v["rise"]) == (2, 2, pytest.approx(0.25))
    with pytest.raises(ValueError, match="one before and one after value per seed"):
        claims.check_rise([0.1], [0.2, 0.3])


def test_sparsity_claim_fails_on_two_untrained_networks(sample):
    """Control: untrained networks of different seeds are not 'sparser' than each other."""
    _, _, probe = sample
    stats = [claims.layer_stats(measure.record(claims.relu_lenet5(s), probe, list(claims.RELU_LAYERS)))
             for s in range(6)]
    for layer in ("act2", "act3"):
        for key in ("live_sparsity", "localization") if layer == "act2" else ("live_sparsity",):
            before = [s[layer][key] for s in stats[:3]]
            after = [s[layer][key] for s in stats[3:]]
            assert not claims.check_rise(before, after)["reproduced"], (layer, key)


def test_sparsity_claim_holds_after_training(sample):
    train_data, _, probe = sample
    runs = [claims.dynamics_run(train_data, probe, seed, epochs=6) for seed in range(3)]
    before = claims.layer_values(runs, 0, "act2", "live_sparsity")
    after = claims.layer_values(runs, -1, "act2", "live_sparsity")
    assert claims.check_rise(before, after)["reproduced"]
    # ... and the same check, trained against trained networks of other seeds, is the control that fails
    assert not claims.check_rise(after, after[1:] + after[:1])["reproduced"]
    smooth = [r["smoothness"] for r in runs]
    assert claims.check_rise([s[0] for s in smooth], [s[-1] for s in smooth])["reproduced"]
    # two sets of untrained starts are the smoothness claim's control
    others = [measure.filter_smoothness(claims.relu_lenet5(10 + i).conv1.weight).mean().item() for i in range(3)]
    assert not claims.check_rise([s[0] for s in smooth], others)["reproduced"]


def test_dead_trend_fails_when_no_rate_is_high(sample):
    """Control: a sweep of small rates, none diverging, leaves no trend of dead units."""
    train_data, test_data, probe = sample
    sweeps = [claims.sweep_run(train_data, probe, test_data, (0.001, 0.002, 0.004), seed, epochs=1)
              for seed in range(3)]
    assert not any(s[r]["diverged"] for s in sweeps for r in s)
    verdict = claims.check_dead_trend(sweeps)
    assert not verdict["reproduced"] and verdict["margin"] < 0.05


def test_dead_trend_holds_for_a_rate_that_kills(sample):
    train_data, test_data, probe = sample
    sweeps = [claims.sweep_run(train_data, probe, test_data, (0.03, 3.0), seed, epochs=3) for seed in range(3)]
    verdict = claims.check_dead_trend(sweeps)
    assert verdict["reproduced"] and verdict["dead"][3.0] > 0.5


def test_diverged_runs_are_never_counted_as_dead():
    def run(dead, diverged=False):
        return {"diverged": diverged, "dead": math.nan if diverged else dead, "dead_conv": 0.0, "accuracy": 0.5}
    # the highest rate diverged in one seed: it is left out, and what remains shows no trend
    sweeps = [{0.01: run(0.1), 0.1: run(0.1), 10.0: run(0, diverged=s == 0)} for s in range(3)]
    verdict = claims.check_dead_trend(sweeps)
    assert verdict["diverged"] == {0.01: 0, 0.1: 0, 10.0: 1}
    assert verdict["high"] == 0.1 and not verdict["reproduced"]
    # every rate but one diverged: nothing to compare, not reproduced
    sweeps = [{0.01: run(0.1), 1.0: run(0, diverged=True)} for s in range(3)]
    assert not claims.check_dead_trend(sweeps)["reproduced"]


def test_weight_decay_arithmetic_matches_sgd_with_nesterov_momentum():
    lrs = [0.05] * 300
    wd = claims.weight_decay_for(math.exp(-1.0), lrs)
    assert claims.decay_per_run(wd, lrs) == pytest.approx(math.exp(-1.0))
    w = torch.nn.Parameter(torch.ones(1))
    sgd = torch.optim.SGD([w], lr=0.05, momentum=0.9, nesterov=True, weight_decay=wd)
    for _ in lrs:
        w.grad = torch.zeros(1)
        sgd.step()
    assert w.item() == pytest.approx(math.exp(-1.0), rel=0.05)
    # without the 1/(1 - momentum) the prediction would be far off: the control
    assert abs(w.item() - math.exp(-wd * sum(lrs))) > 0.3


def _report(*args):
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "seed_claims.py"), *args],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)


def _rows(stdout: str) -> list[str]:
    table = [line for line in stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert table[0].startswith("| claim | measured")
    return table[1:]


@pytest.mark.slow
def test_claims_report_runs_in_smoke_with_the_lessons_seeds():
    # as many seeds as the smoke profile's lessons use: the report judges what the lessons assert
    out = _report("--profile", "smoke", "--seeds", "3", "--only", "digits")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    rows = _rows(out.stdout)
    assert len(rows) >= 13 and all(" of 3 |" in r for r in rows)
    assert "profile smoke, 3 seeds, data mnist-sample" in out.stdout
    # lesson 06's sanity check, over the pixels LeNet-1 reads, with its unrelated-networks control
    assert sum("| reproduced | yes |" in r for r in rows if "unrelated LeNet-1s disagree" in r) == 3


@pytest.mark.slow
def test_alexnet_rows_run_on_the_offline_photos_and_are_not_asserted_there():
    out = _report("--profile", "smoke", "--seeds", "2", "--only", "alexnet", "--alexnet-epochs", "1")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    rows = _rows(out.stdout)
    assert len(rows) == 6 and all(" of 2 |" in r and r.endswith("| no |") for r in rows)
    assert "offline photos 120 train / 40 val at 80 px, 1 epochs" in out.stdout
    assert any(r.startswith("| conv1's two streams differ in colour") for r in rows)


def test_the_report_fails_when_an_asserted_claim_is_not_reproduced(monkeypatch, capsys):
    """The report's own control: a run in which a claim the lesson asserts came out the other way must
    not pass quietly."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import seed_claims

    def rows(reproduced):
        return [claims.claim_row("a claim", [0.1, 0.2], [0.3, 0.3], "control", higher=True,
                                 reproduced=reproduced, asserted=True, data="data")]
    monkeypatch.setattr(claims, "digit_claims", lambda *a, **k: rows(True))
    monkeypatch.setattr(claims, "decision_claims", lambda *a, **k: [])
    assert seed_claims.main(["--profile", "smoke", "--seeds", "2", "--only", "digits"]) == 0
    monkeypatch.setattr(claims, "digit_claims", lambda *a, **k: rows(False))
    assert seed_claims.main(["--profile", "smoke", "--seeds", "2", "--only", "digits"]) == 1
    out = capsys.readouterr().out
    assert "| a claim | 0.150 ± 0.050 | 0.300 (control) | 0 of 2 | not reproduced | yes |" in out
    assert "ASSERTED BUT NOT REPRODUCED in this run: ['a claim']" in out


def test_stream_gap_is_significant_only_for_a_real_split():
    gen = torch.Generator().manual_seed(0)
    split = torch.cat([torch.rand(48, generator=gen) * 0.3, 0.5 + torch.rand(48, generator=gen) * 0.3])
    assert claims.stream_gap(split, 48)["p"] < 0.01
    # control: the same values in random order, as a single-stream network's halves would be
    shuffled = split[torch.randperm(96, generator=gen)]
    ps = [claims.stream_gap(torch.rand(96, generator=gen), 48, permutations=500)["p"] for _ in range(20)]
    assert claims.stream_gap(shuffled, 48)["p"] > 0.01 and sum(p < 0.05 for p in ps) <= 4
    with pytest.raises(ValueError, match="split the 96 values"):
        claims.stream_gap(split, 96)


# --- lesson 06 ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_digits():
    return digits.mnist_sample("train"), digits.mnist_sample("test")


def test_shift_claim_holds_for_lenet1_and_fails_on_its_controls(smoke_digits):
    train_data, test_data = smoke_digits
    runs = [claims.shift_run(train_data, test_data, seed, epochs=3, shifts=(0, 2)) for seed in range(2)]
    assert claims.check_shift(runs, 1)["holds"]
    # Control 1: no shift at all: every network keeps all of its accuracy, nobody keeps more.
    assert not claims.check_shift(runs, 0)["holds"]
    # Control 2: the same claim made for an MLP against the others fails.
    assert not claims.check_shift(runs, 1, conv="MLP 784-32-10")["holds"]


def test_weight_blind_verdicts_on_made_up_correlations():
    assert claims.check_weight_blind([0.9, 0.7, 0.8], unrelated=[0.1, 0.0, 0.2])["blind"]
    assert claims.check_weight_blind([0.1, -0.2, 0.05], unrelated=[0.15, 0.1, -0.1])["depends"]
    mixed = claims.check_weight_blind([0.7, 0.1], unrelated=[0.1, 0.1])     # the seeds disagree: neither
    assert not mixed["blind"] and not mixed["depends"]
    # neither, when the control cannot tell two unrelated networks apart (their maps agree anyway)
    mixed = claims.check_weight_blind([0.7, 0.1], unrelated=[0.6, 0.6])
    assert not mixed["blind"] and not mixed["depends"] and not mixed["control_ok"]
    # the rule compares with the control, as the lesson's words say: maps that stay well above what two
    # unrelated networks share do not "depend on the weights", even below the 0.5 of the old fixed rule
    above = claims.check_weight_blind([0.40, 0.45, 0.42], unrelated=[0.00, 0.02, 0.01])
    assert not above["depends"] and above["excess"] > 0.4
    # the control: when two unrelated networks already agree, a low correlation is not claimed as "depends"
    assert claims.check_weight_blind([0.1, 0.2], unrelated=[0.2, 0.3])["depends"]
    failed = claims.check_weight_blind([0.1, 0.2], unrelated=[0.4, 0.65])
    assert not failed["depends"] and not failed["control_ok"]
    # and without a control nothing is claimed
    assert not claims.check_weight_blind([0.1, -0.2, 0.05])["depends"]


def test_sanity_check_separates_methods_on_lenet1_and_its_control(smoke_digits):
    """On trained LeNet-1, over the pixels it reads: the weight-blind control (the digit itself) stays at
    1, and Grad-CAM, occlusion and saliency all fall well below 0.5: they depend on the weights."""
    from course_lib import env, loader, models, train

    (x, y), (xt, yt) = smoke_digits
    env.seed_everything(0)
    net = models.LeNet1()
    train.fit(net, (x, y), epochs=3, lr=0.3, seed=0, progress=False, device="cpu")
    result = claims.sanity_run(net.eval(), loader.normalize(xt[:8]), yt[:8], ["fc", "conv2", "conv1"], seed=0)
    assert result["image (control)"] == [pytest.approx(1.0)] * 3
    for method in ("Grad-CAM", "occlusion", "saliency"):
        assert abs(result[method][-1]) < 0.5, method


def test_whole_frame_saliency_fails_the_unrelated_networks_control(smoke_digits):
    """The artefact the old sanity check measured: over the whole 28 x 28 frame, two LeNet-1s that share
    no weights give saliency maps correlated above 0.5, because the 384 pixels outside the 20 x 20 box
    LeNet-1 reads are 0 in both and tie. Over the pixels it reads, the control holds."""
    from course_lib import attribution, loader, models

    _, (xt, yt) = smoke_digits
    probe, targets = loader.normalize(xt[:16]), yt[:16]
    whole = torch.ones(28, 28, dtype=torch.bool)
    assert attribution.visible_mask(models.LeNet1(), 28).sum() == 400
    old = [claims.unrelated_run(probe, targets, seed, mask=whole)["saliency"] for seed in range(3)]
    new = [claims.unrelated_run(probe, targets, seed)["saliency"] for seed in range(3)]
    assert not claims.check_weight_blind([0.1] * 3, unrelated=old)["control_ok"], old
    assert claims.check_weight_blind([0.1] * 3, unrelated=new)["control_ok"], new
    assert max(new) < 0.35 < max(old)


# --- lesson 08 ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference_alexnet():
    from course_lib import references
    return references.load_network("alexnet-imagenette")[0]


def test_a_made_image_matches_its_units_filter_and_the_rule_fails_on_its_control(reference_alexnet):
    runs = [claims.filter_match(reference_alexnet, [3, 40], seed, steps=25) for seed in range(2)]
    own, other = [np.mean(r["own"]) for r in runs], [np.mean(r["shuffled"]) for r in runs]
    assert claims.check_rise(other, own, 0.1)["reproduced"]
    # the control: another unit's filter against yet other units' filters (another draw) cannot "match"
    others = [np.mean(claims.filter_match(reference_alexnet, [3, 40], seed + 100, steps=25)["shuffled"])
              for seed in range(2)]
    assert not claims.check_rise(other, others, 0.1)["reproduced"]


def test_made_images_beat_real_patches_only_for_their_own_unit(reference_alexnet, smoke_digits):
    from course_lib import imagenette
    root = imagenette.offline_folder()
    photos_ = imagenette.load_split("val", root=root, download=False, resolution=64, progress=False).images[:16]
    runs = [claims.made_against_real(reference_alexnet, "act5", [7], photos_, seed, size=64, steps=25, climb="conv5")
            for seed in range(2)]
    made, real, others = ([r[k][0] for r in runs] for k in ("made", "real", "others"))
    assert claims.check_rise(real, made)["reproduced"] and claims.check_rise(others, made)["reproduced"]
    # the control: what the image made for unit 7 gives the *other* units does not beat their real patches
    assert not claims.check_rise(real, others)["reproduced"]


def test_fooling_beats_noise_and_the_rule_fails_on_noise_against_noise(smoke_digits):
    from course_lib import env, models, train
    (x, y), (xt, yt) = smoke_digits
    env.seed_everything(0)
    net = models.LeNet1()
    train.fit(net, (x, y), epochs=3, lr=0.3, progress=False, device="cpu")
    pixels, labels = xt[:200].float() / 255, yt[:200]
    runs = [claims.fooling_run(net.eval(), pixels, labels, (0.1,), seed) for seed in range(2)]
    fgsm, noise = [r["fgsm"][0] for r in runs], [r["noise"][0] for r in runs]
    assert claims.check_rise(noise, fgsm)["reproduced"]
    other_noise = [claims.fooling_run(net.eval(), pixels, labels, (0.1,), seed + 10)["noise"][0] for seed in range(2)]
    assert not claims.check_rise(noise, other_noise)["reproduced"], "noise against noise of another seed"


def test_unregularized_images_are_of_higher_frequency_and_the_rule_fails_on_its_control(reference_alexnet):
    runs = [claims.frequency_with_and_without(reference_alexnet, "conv5", [7, 30], seed, size=64, steps=25)
            for seed in range(2)]
    plain, regularized = [np.mean(r["plain"]) for r in runs], [np.mean(r["regularized"]) for r in runs]
    assert claims.check_rise(regularized, plain, 0.01)["reproduced"]
    # the control: regularized images against regularized images of other units show no rise
    other = [np.mean(claims.frequency_with_and_without(reference_alexnet, "conv5", [12, 50], seed, size=64,
                                                       steps=25)["regularized"]) for seed in range(2)]
    assert not claims.check_rise(regularized, other, 0.01)["reproduced"]


def test_ink_leaving_the_box_is_measured_and_zero_for_a_digit_inside_it():
    from course_lib.claims import erase_pushed_out, ink_leaving_box

    inside = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    inside[..., 10:18, 10:18] = 255                      # 8 x 8 ink, 6 px from the 20 x 20 box's edges
    assert ink_leaving_box(inside, (0, 4)) == [0.0, 0.0]     # the control: nothing can leave
    edge = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    edge[..., 4:24, 4:6] = 255                            # a stroke along the box's left edge
    out = ink_leaving_box(edge, (0, 1, 2))
    assert out[0] == 0 and 0 < out[1] < out[2]
    erased = erase_pushed_out(edge, -1, 0)                # pushed left: its left column leaves the box
    assert int(erased[..., 4].sum()) == 0 and torch.equal(erased[..., 5], edge[..., 5])


# --- lesson 05: the purity of a unit's best images, and its chance level ---------------------------

def test_chance_purity_is_the_largest_class_share_of_random_draws_not_one_over_the_classes():
    balanced = torch.arange(10).repeat(400)
    chance = claims.chance_purity(balanced, top=20)
    assert 0.20 < chance < 0.24            # about 0.22: the largest of ten counts of 20 draws, not 0.1
    assert claims.chance_purity(torch.zeros(50, dtype=torch.long)) == 1.0      # one class: every draw is pure
    # a unit whose activations are random picks its best images at random: its purity is the chance level
    gen = torch.Generator().manual_seed(0)
    acts = torch.rand(len(balanced), 64, 2, 2, generator=gen)
    random_units = claims.top_image_purity(acts, balanced, range(64), top=20)
    assert abs(random_units.mean().item() - chance) < 0.03
    # the control: a unit that fires for one class only is pure, far above chance
    acts[:, 0] = (balanced == 3).float()[:, None, None] + 0.01 * acts[:, 0]
    assert claims.top_image_purity(acts, balanced, [0], top=20).item() == 1.0


def test_lesson_08s_real_photos_come_from_every_class_in_turn():
    """The real-patch control searches photos of every class: the validation split is stored class by class,
    so its first images are all of one class (the control that was: 64 tench)."""
    from types import SimpleNamespace

    from course_lib.claims.units import every_class_in_turn
    labels = torch.tensor([0] * 5 + [1] * 3 + [2] * 4)
    images = torch.arange(12, dtype=torch.uint8).view(12, 1, 1, 1).expand(12, 3, 2, 2)
    picked = every_class_in_turn(SimpleNamespace(val_labels=labels, val_images=images), 8)
    assert picked.shape == (8, 3, 2, 2)
    assert picked[:, 0, 0, 0].tolist() == [0, 5, 8, 1, 6, 9, 2, 7]
    assert set(labels[picked[:, 0, 0, 0].long()].tolist()) == {0, 1, 2}
    assert set(labels[:8].tolist()) != {0, 1, 2}      # the control: the first 8 miss a class

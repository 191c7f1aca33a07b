"""The verdict rules every claim of the course is judged by, fixed in advance, each false on its control
(two untrained networks, a sweep of small rates, no shift, a random split), and the rows of the claims
report."""

from __future__ import annotations

import math

import numpy as np
import torch


def check_rise(before, after, min_rise: float = 0.02) -> dict:
    """Verdict on "the value rises from ``before`` to ``after``", given one number per seed for each.

    Holds when it rose in every seed and the mean rise is larger than twice the spread (standard
    deviation) of the rises and than ``min_rise``: a claim that a control (two untrained networks,
    say) fails. Returns ``{"before", "after", "rise", "spread", "k", "n", "reproduced"}``: means
    over seeds, and ``k`` of ``n`` seeds rose.
    """
    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if b.shape != a.shape or b.size == 0:
        raise ValueError(f"Expected one before and one after value per seed, got {b.size} and {a.size}.")
    rise = a - b
    spread = float(rise.std()) if len(rise) > 1 else 0.0
    k = int((rise > 0).sum())
    return {"before": float(b.mean()), "after": float(a.mean()), "rise": float(rise.mean()),
            "spread": spread, "k": k, "n": len(rise),
            "reproduced": bool(k == len(rise) and rise.mean() > max(2 * spread, min_rise))}


def paired_table(values: dict[str, list[float]], base: str, min_change: float, higher: bool = True) -> list[dict]:
    """The "one change at a time" table (lessons 02 and 09): ``values`` maps each row's name to one number per
    seed (the same seeds in every row), ``base`` names the row the others are compared with. Returns one
    dict a row, in order: ``{"change", "values", "mean", "spread" (std over seeds), "diff"/"diff_spread"
    (mean and std of the paired difference from the base, seed by seed), "beats_spread", "better"}``.
    ``beats_spread``: the change moved the number the same way in every seed, by more than twice the spread
    of the paired differences and than ``min_change`` (:func:`check_rise` both ways); ``better``: it beat the
    spread in the good direction (up when ``higher``)."""
    baseline = np.asarray(values[base], dtype=float)
    rows = []
    for name, vals in values.items():
        v = np.asarray(vals, dtype=float)
        diff = v - baseline
        up, down = check_rise(baseline, v, min_change), check_rise(v, baseline, min_change)
        beats = name != base and (up["reproduced"] or down["reproduced"])
        rows.append({"change": name, "values": v.tolist(), "mean": float(v.mean()), "spread": float(v.std()),
                     "diff": float(diff.mean()), "diff_spread": float(diff.std()), "beats_spread": bool(beats),
                     "better": bool(beats and (up if higher else down)["reproduced"])})
    return rows


def check_dead_trend(sweeps: list[dict], key: str = "dead") -> dict:
    """Verdict on "higher learning rates leave more dead units", over the rates that never diverged.

    ``sweeps``: :func:`sweep_run` results, one per seed. Takes the rates at which no seed diverged;
    the claim holds when the highest of them leaves more dead units than the lowest, by a margin
    larger than the spread across seeds (the largest standard deviation at either rate), and when
    the dead share rises with the rate overall (positive rank correlation of rate and mean dead share).
    Returns ``{"rates", "dead" (mean per rate), "spread" (std per rate), "diverged" (seeds per rate),
    "low", "high", "margin", "noise", "trend", "reproduced"}``.
    """
    rates = sorted(sweeps[0])
    diverged = {r: sum(s[r]["diverged"] for s in sweeps) for r in rates}
    ok = [r for r in rates if diverged[r] == 0]
    dead = {r: float(np.mean([s[r][key] for s in sweeps])) for r in ok}
    spread = {r: float(np.std([s[r][key] for s in sweeps])) for r in ok}
    out = {"rates": rates, "dead": dead, "spread": spread, "diverged": diverged, "reproduced": False,
           "low": None, "high": None, "margin": math.nan, "noise": math.nan, "trend": math.nan}
    if len(ok) < 2:
        return out
    low, high = ok[0], ok[-1]
    margin = dead[high] - dead[low]
    noise = max(spread[low], spread[high])
    trend = _rank_correlation(ok, [dead[r] for r in ok])
    out.update(low=low, high=high, margin=margin, noise=noise, trend=trend,
               reproduced=bool(margin > max(noise, 0.01) and trend > 0))
    return out


def _rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two sequences (ties get their mean rank); NaN if one is constant."""
    from scipy.stats import spearmanr

    if len(set(b)) < 2:
        return math.nan
    return float(spearmanr(a, b).statistic)


def decay_per_run(weight_decay: float, lrs, momentum: float = 0.9) -> float:
    """By what factor ``fit``'s SGD shrinks a weight that the loss does not push on, over a run with
    learning rates ``lrs`` (one per step): ``exp(-weight_decay * sum(lrs) / (1 - momentum))``.

    With momentum the decay term's steps add up like a geometric series, so each step shrinks the
    weight by about ``lr * weight_decay / (1 - momentum)``, ten times ``lr * weight_decay`` at 0.9.
    """
    return math.exp(-weight_decay * float(sum(lrs)) / (1 - momentum))


def weight_decay_for(target: float, lrs, momentum: float = 0.9) -> float:
    """The weight decay under which :func:`decay_per_run` is ``target`` (e.g. ``exp(-1)``)."""
    return -math.log(target) * (1 - momentum) / float(sum(lrs))


def claim_row(claim: str, measured, control, control_name: str, *, higher: bool, reproduced: bool,
              asserted: bool, data: str) -> dict:
    """One row of the claims report: means and spreads over seeds of ``measured`` and ``control`` (one
    value per seed each), in how many seeds the measured value beat the control (``higher``: by being
    above it, else below), and the verdict of the lesson's rule."""
    m, c = np.asarray(measured, float), np.asarray(control, float)
    return {"claim": claim, "measured": float(m.mean()), "measured_spread": float(m.std()),
            "control": float(c.mean()), "control_name": control_name,
            "values": m.tolist(), "control_values": c.tolist(),
            "k": int((m > c).sum() if higher else (m < c).sum()), "n": len(m),
            "reproduced": bool(reproduced), "asserted": asserted, "data": data}


def stream_gap(values, first: int, permutations: int = 2000, seed: int = 0) -> dict:
    """Do the first ``first`` filters differ from the others more than a random split would?

    Takes one number per filter (``values``, e.g. AlexNet's 96 conv1 color scores; the first 48 are
    stream 0). Returns ``{"gap": |mean(first) - mean(rest)|, "p": the permutation test's p-value over
    ``permutations`` random splits into the same sizes}`` (scipy's ``permutation_test``, which counts the
    observed split too, so p >= 1 / (permutations + 1)). A network without streams (the single-stream
    control) gives p spread evenly over 0-1; "the streams specialized" needs a small p (e.g. below 0.01).
    """
    from scipy.stats import permutation_test

    v = torch.as_tensor(values, dtype=torch.float64).flatten().numpy()
    if not 0 < first < len(v):
        raise ValueError(f"first must split the {len(v)} values in two, got {first}.")
    gap = lambda a, b, axis: np.abs(a.mean(axis=axis) - b.mean(axis=axis))
    result = permutation_test((v[:first], v[first:]), gap, permutation_type="independent", vectorized=True,
                              n_resamples=permutations, alternative="greater", random_state=seed)
    return {"gap": float(result.statistic), "p": float(result.pvalue)}


def check_stream_split(p_streams, p_control, alpha: float = 0.01) -> dict:
    """Verdict on "the two streams specialize": the two-stream network's halves differ more than a
    random split would (permutation ``p < alpha``) in every seed, while the single-stream control's
    arbitrary halves do not (``p >= alpha`` in every seed). Returns ``{"reproduced", "k", "n"}``, ``k``
    the seeds in which the streams split."""
    p_streams, p_control = np.asarray(p_streams, float), np.asarray(p_control, float)
    k = int((p_streams < alpha).sum())
    return {"reproduced": bool(k == len(p_streams) and (p_control >= alpha).all()), "k": k, "n": len(p_streams)}


def check_conv1_conv5(trained: dict, untrained: dict, margin: float = 0.1) -> dict:
    """Lesson 05's two verdicts on the cat, from :func:`cat_layers` of a trained and an untrained
    network: ``sparser`` — conv5 is sparser than conv1 and than the untrained conv5, each by more than
    ``margin``; ``abstract`` — conv1 resembles the picture more than conv5 does, by more than ``margin``
    and by more than in the untrained network."""
    t1, t5, u1, u5 = trained["act1"], trained["act5"], untrained["act1"], untrained["act5"]
    drop, drop_untrained = t1["corrected"] - t5["corrected"], u1["corrected"] - u5["corrected"]
    return {"sparser": bool(t5["sparsity"] > t1["sparsity"] + margin and t5["sparsity"] > u5["sparsity"] + margin),
            "abstract": bool(drop > margin and drop > drop_untrained),
            "drop": drop, "drop_untrained": drop_untrained}


def check_shift(runs: list[dict[str, list[float]]], index: int, conv: str = "LeNet-1") -> dict:
    """The shift claim across seeds: the share of its accuracy that ``conv`` keeps at shift number
    ``index`` (accuracy there / unshifted accuracy) is higher, in every seed, than every other model's in
    any seed. Returns ``{"holds", "kept": {name: [share per seed]}}``; false when the networks are the
    same kind (the control)."""
    kept = {name: [r[name][index] / r[name][0] for r in runs] for name in runs[0]}
    others = [v for name, vals in kept.items() if name != conv for v in vals]
    return {"holds": bool(others) and min(kept[conv]) > max(others), "kept": kept}


def check_weight_blind(finals: list[float], unrelated: list[float] | None = None, threshold: float = 0.5,
                       floor: float = 0.05) -> dict:
    """Verdict on one method from its rank correlations with the trained maps once every layer is random
    (``finals``, one per seed), next to its control ``unrelated`` (one per seed, :func:`unrelated_run`): the
    correlation of the maps of two independently initialised networks, which share no weights.

    ``depends``: the maps after randomization agree with the trained ones **no more than two unrelated
    networks agree** — the paired excess ``|final| - |unrelated|`` is not above its spread (twice its standard
    deviation, at least ``floor``) — and the control can tell networks apart at all (``control_ok``: two
    unrelated networks' maps disagree, ``|unrelated| < threshold``; a method that ignores every network, like
    the digit itself, fails it), and no seed's maps stayed correlated (every ``|final| < threshold``). Without
    the control no ``depends`` is claimed. ``blind``: the maps stay correlated (all above ``threshold``) and
    clearly more than the control's. Neither when the seeds disagree (one stays above ``threshold``, another not).
    Returns ``{"blind", "depends", "control_ok", "mean", "spread", "unrelated", "excess"}``."""
    f = np.abs(np.asarray(finals, dtype=float))
    control_ok = unrelated is not None and max(abs(v) for v in unrelated) < threshold
    excess = f - np.abs(np.asarray(unrelated, dtype=float)) if unrelated is not None else np.full_like(f, np.nan)
    margin = max(2 * float(excess.std()), floor) if unrelated is not None else math.nan
    not_above = unrelated is not None and float(excess.mean()) <= margin
    above = unrelated is None or float(excess.mean()) > margin
    agree = float(f.max()) < threshold      # no seed's maps stayed correlated: the seeds tell one story
    return {"blind": bool(min(finals) > threshold and above), "depends": bool(control_ok and not_above and agree),
            "control_ok": bool(control_ok), "mean": float(np.mean(finals)), "spread": float(np.std(finals)),
            "unrelated": float(np.mean(unrelated)) if unrelated is not None else math.nan,
            "excess": float(excess.mean()) if unrelated is not None else math.nan}

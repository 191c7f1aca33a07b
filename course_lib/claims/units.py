"""Lesson 08's claims as experiments over seeds: what a unit wants to see (the image made for it, against its
own filter, its top real patch and the other units; with and without regularizers), and what fools a
network (FGSM and PGD, against random noise of the same size)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .. import env, made_images, measure, receptive_fields
from .rules import check_rise, claim_row

# steps of gradient ascent per image, by profile: what a lesson can afford on each machine
STEPS = {"smoke": 40, "cpu": 80, "gpu": 200}

# the regularizers the lesson calls "regularized": small shifts and a blur after every step
REGULARIZED = {"jitter": 2, "blur": 0.3}
# the random start of the published measurements (made_images.maximize's before its start became faint)
START_NOISE = 0.5


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double() - a.double().mean(), b.flatten().double() - b.double().mean()
    return float((a @ b) / (a.norm() * b.norm()).clamp_min(1e-12))


def filter_match(model: nn.Module, units, seed: int, size: int = 63, steps: int = 40, layer: str = "conv1") -> dict:
    """For each of conv ``layer``'s ``units``: the image made for its centre unit (:func:`made_images.maximize`,
    no regularizer), cut to the unit's receptive field, and its correlation with the unit's own filter
    (``own``) and with the filter of another unit drawn at random with ``seed`` (``shuffled``, the control).
    Returns ``{"own": [...], "shuffled": [...]}``, one number per unit."""
    weights = measure.conv_weights(model, layer)
    k = weights.shape[-1]
    field, stride, offset = receptive_fields.receptive_field(model, layer)
    gen = torch.Generator().manual_seed(seed)
    others = torch.randperm(len(weights), generator=gen)
    own, shuffled = [], []
    for i, u in enumerate(units):
        image, _ = made_images.maximize(model, layer, u, size=size, steps=steps, seed=seed * 1000 + u, lr=0.1,
                                     unit="center", noise=START_NOISE)
        side = (size + 2 * (-offset) - k) // stride + 1          # positions of the layer's maps
        top = offset + (side // 2) * stride
        patch = image[:, top:top + k, top:top + k]
        other = int(others[i]) if int(others[i]) != u else int(others[(i + 1) % len(others)])
        own.append(_correlation(patch, weights[u]))
        shuffled.append(_correlation(patch, weights[other]))
    return {"own": own, "shuffled": shuffled}


def made_against_real(model: nn.Module, layer: str, units, images: torch.Tensor, seed: int, size: int,
                      steps: int, climb: str | None = None) -> dict:
    """For each of ``layer``'s ``units``: its activation at the centre of the image made for it (regularized),
    its largest activation anywhere on the real ``images`` (uint8, its top real patch), and the mean
    activation the made image gives the *other* units of the layer at that position (the control).
    ``climb``: the layer whose unit the image is made for (default ``layer``; the convolution before a ReLU
    has a gradient even where the ReLU is 0). Returns ``{"made": [...], "real": [...], "others": [...]}``."""
    real = measure.record(model, images, [layer])[layer]                 # N x C x h x w
    made, top, others = [], [], []
    for u in units:
        image, _ = made_images.maximize(model, climb or layer, u, size=size, steps=steps, seed=seed * 1000 + u, lr=0.1,
                                     unit="center", noise=START_NOISE, **REGULARIZED)
        acts = measure.record(model, (image[None] * 255).round().byte(), [layer])[layer][0]
        centre = acts[:, acts.shape[1] // 2, acts.shape[2] // 2]
        made.append(float(centre[u]))
        top.append(float(real[:, u].amax()))
        others.append(float(torch.cat([centre[:u], centre[u + 1:]]).mean()))
    return {"made": made, "real": top, "others": others}


def frequency_with_and_without(model: nn.Module, layer: str, units, seed: int, size: int, steps: int) -> dict:
    """The spatial frequency (:func:`measure.filter_frequency`, cycles/pixel) of the images made for
    ``units`` with no regularizer (``plain``) and with :data:`REGULARIZED` (``regularized``)."""
    out = {"plain": [], "regularized": []}
    for u in units:
        for name, extra in (("plain", {}), ("regularized", REGULARIZED)):
            image, _ = made_images.maximize(model, layer, u, size=size, steps=steps, seed=seed * 1000 + u, lr=0.1,
                                         unit="center", noise=START_NOISE, **extra)
            # the whole image's spectrum (the measure pads small filters to 32 x 32; an image is larger)
            out[name].append(float(measure.filter_frequency(image[None], size=max(32, image.shape[-1]))[0]))
    return out


def fooling_run(model: nn.Module, images: torch.Tensor, labels, epsilons, seed: int) -> dict:
    """The share of the correctly read ``images`` (float pixels in [0, 1]) whose answer changes under FGSM,
    PGD and random sign noise (the control) at each of ``epsilons``: ``{attack: [share per epsilon]}``."""
    return {attack: [made_images.flipped_share(model, images, labels, attack, eps, seed=seed) for eps in epsilons]
            for attack in ("fgsm", "pgd", "noise")}


EPSILONS = (0.05, 0.1, 0.2)


def every_class_in_turn(data, count: int) -> torch.Tensor:
    """``count`` validation images of ImagenetteData ``data`` taken from each class in turn (the first of every
    class, then the second, ...): ``count x 3 x S x S`` uint8. The split is stored class by class, so its first
    64 photos would all be tench, and a unit's top real patch would be searched for among fish alone."""
    labels = data.val_labels
    rank = torch.empty_like(labels)
    for c in labels.unique():
        here = labels == c
        rank[here] = torch.arange(int(here.sum()))
    return data.val_images[torch.argsort(rank * (int(labels.max()) + 1) + labels, stable=True)[:count]]


def unit_claims(prof: env.Profile, seeds: int, progress: bool = True) -> list[dict]:
    """Lesson 08's claims with ``seeds`` seeds, as rows of the claims report: on the course's reference AlexNet
    (every layer trained on Imagenette), an image made for a conv1 unit matches its filter, one made for a
    conv5 unit excites it more than its top real patch and more than the other units, unregularized images
    are of higher frequency; on LeNet-1s trained with each seed, FGSM and PGD flip more answers than noise of
    the same size."""
    from tqdm.auto import tqdm

    from .. import digits, imagenette, models, references, train

    alexnet, record = references.load_network("alexnet-imagenette")
    size = record["settings"]["image_size"]
    steps = STEPS.get(prof.name, 80)
    val = torch.nn.functional.interpolate(every_class_in_turn(imagenette.for_profile(prof), 64).float(),
                                          size=(size, size), mode="bilinear").round().byte()
    train_data, test = digits.for_profile("train", prof), digits.for_profile("test", prof)
    pixels, labels = test[0][:300].float() / 255, test[1][:300]
    # conv5 units that respond to the real images at all (a unit silent on every photo has no gradient to climb)
    peaks = measure.record(alexnet, val, ["act5"])["act5"].amax(dim=(0, 2, 3))
    lively = peaks.argsort(descending=True)[:32].tolist()
    runs = []
    for seed in tqdm(range(seeds), desc="lesson 08 claims", disable=not progress):
        gen = torch.Generator().manual_seed(seed)
        conv1_units = torch.randperm(96, generator=gen)[:6].tolist()
        conv5_units = [lively[i] for i in torch.randperm(len(lively), generator=gen)[:3].tolist()]
        env.seed_everything(seed)
        lenet = models.LeNet1()
        train.fit(lenet, train_data, **prof.lenet_recipe, seed=seed, progress=False)
        runs.append({"match": filter_match(alexnet, conv1_units, seed, steps=steps),
                     "made": made_against_real(alexnet, "act5", conv5_units, val, seed, size=size, steps=steps,
                                               climb="conv5"),
                     "freq": frequency_with_and_without(alexnet, "conv5", conv5_units[:2], seed, size=96, steps=steps),
                     "fool": fooling_run(lenet.eval(), pixels, labels, EPSILONS, seed)})
    data = f"reference AlexNet ({record['data']['name']}); LeNet-1 on {len(train_data[1]):,} digits"
    rows = []

    def row(key, claim, measured, control, control_name, higher=True, min_rise=0.02):
        v = check_rise(control, measured, min_rise) if higher else check_rise(measured, control, min_rise)
        rows.append({"key": key, **claim_row(claim, measured, control, control_name, higher=higher,
                                             reproduced=v["reproduced"], asserted=True, data=data)})

    mean = lambda r, part, key: float(np.mean(r[part][key]))
    row("match", "an image made for a conv1 unit matches its own filter (correlation)",
        [mean(r, "match", "own") for r in runs], [mean(r, "match", "shuffled") for r in runs], "another unit's filter",
        min_rise=0.1)
    row("beats_real", "the image made for a conv5 unit excites it more than its top real patch (activation)",
        [mean(r, "made", "made") for r in runs], [mean(r, "made", "real") for r in runs], "its top real patch")
    row("beats_others", "the image made for a conv5 unit excites it more than the other units",
        [mean(r, "made", "made") for r in runs], [mean(r, "made", "others") for r in runs], "the other units")
    row("high_frequency", "without regularizers the made images are of higher spatial frequency",
        [mean(r, "freq", "plain") for r in runs], [mean(r, "freq", "regularized") for r in runs], "regularized",
        min_rise=0.01)
    for i, eps in enumerate(EPSILONS):
        for attack in ("fgsm", "pgd"):
            row(f"{attack}_{eps}", f"{attack.upper()} at epsilon {eps} flips LeNet-1's answers (share of digits)",
                [r["fool"][attack][i] for r in runs], [r["fool"]["noise"][i] for r in runs], "random sign noise")
    return rows


def lenet_conv1_patch(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The ``k x k`` patch under LeNet-1's conv1 centre unit, as that unit reads it: ``image`` (``1 x 28 x 28``
    pixels in [0, 1]) through the network's frame (:class:`models.DigitFrame`: its 20 x 20 box shrunk to 16 x 16)."""
    framed = model.frame(image[None].float()) if hasattr(model, "frame") else image[None].float()
    k = model.conv1.kernel_size[0]
    top = (framed.shape[-1] - k + 1) // 2
    return framed[0, 0, top:top + k, top:top + k]


def _reads(model: nn.Module, image: torch.Tensor, unit: int) -> torch.Tensor:
    """The pixels of ``image`` (``1 x H x W``) that conv1's centre unit ``unit`` reads: where its value has a
    gradient (bool ``H x W``)."""
    x = image[None].float().clone().requires_grad_(True)
    with torch.enable_grad():
        framed = model.frame(x) if hasattr(model, "frame") else x
        out = model.conv1(framed)[0, unit]
        (grad,) = torch.autograd.grad(out[out.shape[0] // 2, out.shape[1] // 2], x)
    return grad[0, 0] != 0


def conv1_resemblance(model: nn.Module, seeds: int, steps: int = 80, **regularizers) -> dict:
    """How much the images :func:`made_images.maximize` makes for LeNet-1's conv1 centre units resemble their
    filters. For every seed and unit: the correlation of the patch the unit reads (:func:`lenet_conv1_patch`)
    with the unit's own filter (``own``), with its filter's signs alone (``signs``: +1 and -1, what Adam's
    steps of about the learning rate in the sign of the gradient lead to), and with the other units' filters
    (``others``, their mean: the control); and the share of the patch's pixels near black or white (below 0.1
    or above 0.9, among the image's pixels the unit reads: ``saturated``). Returns ``{key: seeds x units array}``."""
    weights = model.conv1.weight.detach()[:, 0]
    out = {key: np.zeros((seeds, len(weights))) for key in ("own", "signs", "others", "saturated")}
    for seed in range(seeds):
        for u in range(len(weights)):
            image, _ = made_images.maximize(model, "act1", u, size=28, steps=steps, seed=seed, **regularizers)
            patch = lenet_conv1_patch(model, image)
            out["own"][seed, u] = _correlation(patch, weights[u])
            out["signs"][seed, u] = _correlation(patch, weights[u].sign())
            out["others"][seed, u] = np.mean([_correlation(patch, weights[v]) for v in range(len(weights)) if v != u])
            reads = _reads(model, image, u)      # the image's pixels the unit reads
            out["saturated"][seed, u] = float(((image[0] < 0.1) | (image[0] > 0.9))[reads].float().mean())
    return out

"""Lesson 05's claims as experiments over seeds: AlexNet's two streams, conv1 and conv5 on a cat, fc7's
nearest neighbours, each next to its control (the single-stream network, an untrained one, raw pixels)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn as nn

from .. import env, measure, models
from .rules import check_conv1_conv5, check_stream_split, claim_row, decay_per_run, stream_gap


def cat_picture(size: int) -> torch.Tensor:
    """scikit-image's cat (Chelsea) as uint8 ``1 x 3 x size x size`` (squeezed to a square, antialiased):
    the picture lesson 05 shows AlexNet."""
    from skimage import data as photos

    cat = torch.from_numpy(photos.chelsea()).permute(2, 0, 1)[None].float()
    return torch.nn.functional.interpolate(cat, size=(size, size), mode="bilinear", antialias=True).round().byte()


def stream_measures(model: nn.Module) -> dict:
    """conv1's filters of ``model`` split in two halves (the two streams of a two-stream AlexNet; an
    arbitrary split for one stream): per filter ``color`` score and spatial ``freq``uency (96 values
    each), the permutation ``p`` of the gap between the halves for each (:func:`stream_gap`), and the
    correlation ``r`` of color and frequency over the filters."""
    w = model.conv1.weight.detach().float().cpu()
    color, freq = measure.color_score(w), measure.filter_frequency(w)
    half = len(w) // 2
    return {"color": color, "freq": freq, "p_color": stream_gap(color, half)["p"],
            "p_freq": stream_gap(freq, half)["p"],
            "color_gap": float(color[:half].mean() - color[half:].mean()),
            "r": float(np.corrcoef(color.numpy(), freq.numpy())[0, 1])}


def cat_layers(model: nn.Module, cat: torch.Tensor) -> dict:
    """conv1 and conv5 (after ReLU) of ``model`` on the uint8 picture ``cat`` (``1 x 3 x S x S``):
    ``{"act1": {...}, "act5": {...}}``, each with ``sparsity``, the maps' chance-corrected ``corrected``
    resemblance to the gray picture (:func:`measure.resemblance`), ``raw`` and ``chance``, and ``maps``."""
    gray = cat[0].float().mean(0)
    acts = measure.record(model, cat, ["act1", "act5"])
    return {layer: {"sparsity": measure.sparsity(a), "maps": a, **measure.resemblance(a[0], gray)}
            for layer, a in acts.items()}


# The paper's schedule: SGD at 0.01, divided by 10 three times over 90 epochs of 1.2 million images in batches
# of 128, weight decay 5e-4 (when each division came is not printed: 30, 30, 20 and 10 epochs is our guess).
PAPER_SCHEDULE = ((30, 0.01), (30, 0.001), (20, 1e-4), (10, 1e-5))
PAPER_STEPS_PER_EPOCH = 1_200_000 // 128


def decay_over_run(settings: dict, train_size: int) -> float:
    """What weight decay leaves of a weight the loss never pushes on (:func:`rules.decay_per_run`) over a run
    of the course's recipe with ``settings`` (``lr``, ``epochs``, ``batch_size``, ``weight_decay``; a
    reference's record) on ``train_size`` images."""
    from ..train import lr_schedule

    steps = -(-train_size // settings["batch_size"])
    return decay_per_run(settings["weight_decay"], lr_schedule(settings["lr"], settings["epochs"], steps))


def paper_decay() -> float:
    """The same factor over the 2012 paper's 90 epochs on ImageNet (:data:`PAPER_SCHEDULE`): about 1e-7."""
    lrs = [lr for epochs, lr in PAPER_SCHEDULE for _ in range(epochs * PAPER_STEPS_PER_EPOCH)]
    return decay_per_run(5e-4, lrs)


def top_image_purity(acts: torch.Tensor, labels: torch.Tensor, channels, top: int = 20) -> torch.Tensor:
    """For each of ``channels`` of a layer's activations ``acts`` (``N x C x h x w`` on N labelled images), the
    share of its ``top`` most exciting images (by the channel's peak over positions) that belong to their most
    common class: 1 when a unit's best images are all of one class, about 1 / classes when they are a random
    draw. Returns ``len(channels)`` floats: how particular the content is that a unit responds to."""
    peak = acts.amax(dim=(2, 3))                                             # N x C
    out = []
    for c in channels:
        best = labels[peak[:, c].topk(min(top, len(labels))).indices]
        out.append(best.bincount().max().item() / len(best))
    return torch.tensor(out)


def chance_purity(labels: torch.Tensor, top: int = 20, draws: int = 2000, seed: int = 0) -> float:
    """The purity :func:`top_image_purity` gives a unit that picks its ``top`` images at random from the labelled
    images (``labels``: N class indices): the mean, over ``draws`` random draws without replacement, of the
    largest class share among them. About 0.22 for 20 of Imagenette's balanced 10 classes, not 1 / 10: the
    largest of ten counts is above their mean."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.as_tensor(labels).flatten()
    shares = [labels[torch.randperm(len(labels), generator=gen)[:top]].bincount().max().item() / min(top, len(labels))
              for _ in range(draws)]
    return float(np.mean(shares))


def content_claim(trained: nn.Module, untrained: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                  units: int = 32, top: int = 20, layer: str = "act5") -> dict:
    """Lesson 05's third claim, "a conv5 unit responds to particular image content", against its control, the
    same architecture untrained: the :func:`top_image_purity` of each network's ``units`` channels that vary
    most across ``images`` (uint8, labelled), and the permutation test of the gap between the two sets
    (:func:`rules.stream_gap`). ``reproduced``: the trained units' best images are more of one class, p < 0.01.
    Returns ``{"trained", "untrained" (purity per unit), "p", "reproduced"}``."""
    purity = {}
    for name, net in (("trained", trained), ("untrained", untrained)):
        acts = measure.record(net, images, [layer])[layer]
        channels = acts.amax(dim=(2, 3)).std(0).argsort(descending=True)[:units].tolist()
        purity[name] = top_image_purity(acts, labels, channels, top)
    p = stream_gap(torch.cat([purity["trained"], purity["untrained"]]), units)["p"]
    return {**purity, "p": p,
            "reproduced": bool(purity["trained"].mean() > purity["untrained"].mean() and p < 0.01)}


def same_class_share(keys: torch.Tensor, key_labels: torch.Tensor, queries: torch.Tensor,
                     query_labels: torch.Tensor) -> float:
    """The share of ``queries`` (``M x D`` codes) whose nearest key (``N x D``, Euclidean) has the same
    label: how well a code groups images of a class (chance: 1 / classes)."""
    nearest = torch.cat([torch.cdist(q, keys).argmin(1) for q in queries.split(1024)])
    return (key_labels[nearest] == query_labels).float().mean().item()


def alexnet_measures(two: nn.Module, one: nn.Module, untrained: nn.Module, d, cat: torch.Tensor) -> dict:
    """Everything lesson 05 measures, for one seed: the two-stream network ``two``, its single-stream
    control ``one``, an ``untrained`` two-stream network, on the data ``d`` (:class:`imagenette.ImagenetteData`)
    and the uint8 picture ``cat``. Returns ``{"streams": stream_measures(two), "control":
    stream_measures(one), "cat": cat_layers(two), "cat_untrained": cat_layers(untrained), "fc7": {"trained",
    "untrained", "pixels": same-class shares}}`` (CPU numbers; no tensors but the per-filter scores)."""
    from ..augment import center_crop

    size = d.val_images.shape[-1]
    train_images = center_crop(d.train_images, size)
    fc7 = {}
    for name, net in (("trained", two), ("untrained", untrained)):
        keys = measure.record(net, train_images, ["act7"])["act7"]
        fc7[name] = same_class_share(keys, d.train_labels, measure.record(net, d.val_images, ["act7"])["act7"],
                                     d.val_labels)
    fc7["pixels"] = same_class_share(train_images.flatten(1).float(), d.train_labels,
                                     d.val_images.flatten(1).float(), d.val_labels)
    cat_t, cat_u = cat_layers(two, cat), cat_layers(untrained, cat)
    for layers in (cat_t, cat_u):
        for v in layers.values():
            v.pop("maps")
    return {"streams": stream_measures(two), "control": stream_measures(one), "cat": cat_t,
            "cat_untrained": cat_u, "fc7": fc7}


# The AlexNet claims lesson 05 asserts on the trained reference network (measured over seeds on
# Imagenette: benchmarks/README.md); the report flags them when they are not reproduced.
ALEXNET_ASSERTED = {"sparser", "abstract"}


def alexnet_claims(prof: env.Profile, seeds: int, progress: bool = True, variant: str = "imagenette") -> list[dict]:
    """Lesson 05's claims over ``seeds`` seeds at profile ``prof``'s recipe, as rows like
    :func:`digit_claims`': each seed trains (or resumes, :func:`trained.train_alexnet` with
    ``resumable=True``) a two-stream AlexNet and its single-stream control, and measures both with
    :func:`alexnet_measures` next to an untrained network. The first row gives the top-1 accuracies."""
    from tqdm.auto import tqdm

    from .. import imagenette, trained

    d = imagenette.for_profile(prof, variant)
    cat = cat_picture(prof.image_size)
    runs, accuracy = [], {1: [], 2: []}
    for seed in tqdm(range(seeds), desc="AlexNet claims", disable=not progress):
        nets = {}
        for streams in (2, 1):
            nets[streams], history = trained.train_alexnet(prof, d, streams, seed, progress=False, resumable=True)
            accuracy[streams].append(history.last["val_accuracy"])
        env.seed_everything(seed)
        untrained = models.AlexNet(num_classes=len(d.classes)).to(next(nets[2].parameters()).device)
        runs.append(alexnet_measures(nets[2], nets[1], untrained, d, cat))
    data = (f"{'offline photos' if d.offline else variant} {len(d.train_labels):,} train / {len(d.val_labels):,} val "
            f"at {prof.image_size} px, {prof.alexnet_epochs} epochs")
    return alexnet_rows(runs, accuracy, data, asserting=not d.offline)


def reference_claims(progress: bool = True) -> list[dict]:
    """Lesson 05's claims measured on the shipped reference pair (``alexnet-imagenette`` and its one-stream
    control), each against its control, the untrained network being the reference's own start
    (:func:`references.initial_network`), on Imagenette at the references' 128 px (all 9,469 training images;
    needs the data). Rows as :func:`alexnet_claims`', over the one seed built; the top-1 row is the records'."""
    from .. import imagenette, references

    (two, record), (one, record_1) = (references.load_network(n) for n in references.names()[1:])
    prof = dataclasses.replace(env.profile("gpu"), image_size=record["settings"]["image_size"],
                               alexnet_epochs=record["settings"]["epochs"])
    d = imagenette.for_profile(prof)
    if d.offline:
        raise RuntimeError("The reference claims need Imagenette (set $COURSE_IMAGENETTE): the offline photos "
                           "cannot test them.")
    device = env.device()
    run = alexnet_measures(two.to(device), one.to(device), references.initial_network(record["name"]).to(device), d,
                           cat_picture(prof.image_size))
    accuracy = {2: [record["accuracy"]["val_top1"]], 1: [record_1["accuracy"]["val_top1"]]}
    data = (f"imagenette {len(d.train_labels):,} train / {len(d.val_labels):,} val at {prof.image_size} px, "
            f"the shipped references ({prof.alexnet_epochs} epochs, seed {record['settings']['seed']})")
    return alexnet_rows([run], accuracy, data, asserting=True)


def alexnet_rows(runs: list[dict], accuracy: dict, data: str, asserting: bool) -> list[dict]:
    """The claims report's rows from one :func:`alexnet_measures` result per seed (``runs``) and the top-1 of
    each seed's networks (``accuracy``: ``{2: [...], 1: [...]}``); ``asserting``: whether the lesson asserts
    :data:`ALEXNET_ASSERTED` on this data."""
    rows = []

    def row(key, claim, measured, control, control_name, *, higher, reproduced):
        asserted = key in ALEXNET_ASSERTED and asserting
        rows.append({"key": key, **claim_row(claim, measured, control, control_name, higher=higher,
                                             reproduced=reproduced, asserted=asserted, data=data)})

    two, one = accuracy[2], accuracy[1]
    row("top1", "AlexNet top-1 on the validation images above 60 %: two streams (control: one stream)", two, one,
        "one stream", higher=True, reproduced=bool(min(two) > 0.6))
    for key, what in (("p_color", "colour score"), ("p_freq", "spatial frequency")):
        split = check_stream_split([r["streams"][key] for r in runs], [r["control"][key] for r in runs])
        row(key, f"conv1's two streams differ in {what} (permutation p, lower: more different)",
            [r["streams"][key] for r in runs], [r["control"][key] for r in runs], "one stream's halves",
            higher=False, reproduced=split["reproduced"])
    cats = [check_conv1_conv5(r["cat"], r["cat_untrained"]) for r in runs]
    row("sparser", "conv5 sparser than conv1 on the cat (sparsity of conv5)",
        [r["cat"]["act5"]["sparsity"] for r in runs], [r["cat_untrained"]["act5"]["sparsity"] for r in runs],
        "untrained conv5", higher=True, reproduced=all(c["sparser"] for c in cats))
    row("abstract", "conv1 resembles the cat more than conv5 (resemblance drop conv1 -> conv5)",
        [c["drop"] for c in cats], [c["drop_untrained"] for c in cats], "untrained", higher=True,
        reproduced=all(c["abstract"] for c in cats))
    row("fc7", "fc7's nearest training image has the same class (share)", [r["fc7"]["trained"] for r in runs],
        [max(r["fc7"]["pixels"], r["fc7"]["untrained"]) for r in runs], "pixels or untrained fc7", higher=True,
        reproduced=all(r["fc7"]["trained"] > max(r["fc7"]["pixels"], r["fc7"]["untrained"]) + 0.05 for r in runs))
    return rows

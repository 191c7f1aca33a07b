"""Lesson 06's claims as experiments over seeds: the sanity check of attribution methods (with two unrelated
networks as its control) and the shift test (LeNet-1 against perceptrons)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .. import env, models, train
from .rules import check_rise, check_shift, check_weight_blind, claim_row


def small_mlp(hidden: int = 4) -> nn.Module:
    """A multilayer perceptron 784 -> ``hidden`` -> 10 with ReLU, for ``N x 1 x 28 x 28`` digits:
    ``hidden=4`` has 3,190 parameters, LeNet-1's size (2,578); ``hidden=32`` has 25,450 and reaches
    about LeNet-1's accuracy."""
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 10))


SHIFT_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def erase_pushed_out(images: torch.Tensor, dx: int, dy: int, box: int = 20) -> torch.Tensor:
    """The shift test's confound alone: uint8 digits ``N x 1 x H x W`` with the strokes that a shift by ``(dx,
    dy)`` would push out of the central ``box x box`` square (the part LeNet-1's frame reads) erased, **not**
    shifted. A network that reads only the box loses those strokes to the shift whatever its architecture."""
    from ..augment import shift

    h = images.shape[-1]
    start = (h - box) // 2
    moved = shift(images, dx, dy)
    kept = torch.zeros_like(moved)
    kept[..., start:start + box, start:start + box] = moved[..., start:start + box, start:start + box]
    return shift(kept, -dx, -dy)


def ink_leaving_box(images: torch.Tensor, shifts=(0, 1, 2, 3, 4), box: int = 20) -> list[float]:
    """The share of the digits' ink (summed pixel values) that lies outside the central ``box x box`` square
    after each of ``shifts`` pixels, averaged over the four directions: one share per shift."""
    total = images.double().sum()
    return [float(np.mean([1 - erase_pushed_out(images, d * dx, d * dy, box).double().sum() / total
                           for dx, dy in SHIFT_DIRECTIONS])) for d in shifts]


def shift_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   shifts=(0, 1, 2, 3, 4), erase_only: bool = False) -> list[float]:
    """Test accuracy of ``model`` on uint8 digits ``images`` moved by each of ``shifts`` pixels,
    averaged over the four directions (right, left, down, up). Returns one accuracy per shift.
    ``erase_only``: the digits are not moved, only the strokes each shift would push out of LeNet-1's box are
    erased (:func:`erase_pushed_out`): how much of the loss the lost strokes alone explain."""
    from ..augment import shift

    move = erase_pushed_out if erase_only else shift
    out = []
    for d in shifts:
        accs = [(train.predict(model, move(images, d * dx, d * dy)).argmax(1) == labels).float().mean().item()
                for dx, dy in SHIFT_DIRECTIONS]
        out.append(float(np.mean(accs)))
    return out


SHIFT_MODELS = {"LeNet-1": models.LeNet1, "MLP 784-4-10": lambda: small_mlp(4),
                "MLP 784-32-10": lambda: small_mlp(32)}
ERASED = "LeNet-1, strokes erased, not shifted"


def shift_run(train_data, test_data, seed: int, epochs: int, shifts=(0, 1, 2, 3, 4), erased: bool = False):
    """Train LeNet-1 and the two MLPs of :data:`SHIFT_MODELS` with ``seed`` and return
    ``{name: accuracy per shift}`` (:func:`shift_accuracy` on ``test_data``). ``erased``: return a pair, that
    and ``{ERASED: LeNet-1's accuracy with only the strokes each shift pushes out of its box erased}``."""
    out, extra = {}, {}
    for name, make in SHIFT_MODELS.items():
        env.seed_everything(seed)
        model = make()
        train.fit(model, train_data, epochs=epochs, lr=0.3 if name == "LeNet-1" else 0.1, seed=seed,
                  progress=False)
        out[name] = shift_accuracy(model, *test_data, shifts=shifts)
        if erased and name == "LeNet-1":
            extra[ERASED] = shift_accuracy(model, *test_data, shifts=shifts, erase_only=True)
    return (out, extra) if erased else out


def lenet1_attributions(cam_layer: str = "act2") -> dict:
    """The methods lesson 06 compares on LeNet-1, as ``{name: f(model, images, target) -> N x H x W}``, and
    the weight-blind control: the uint8 digit itself (``image``), recovered from the normalized input.
    (Guided backprop is not among them: it changes only how gradients pass ReLU modules, and LeNet-1 has
    tanh units, so on it guided backprop *is* saliency; :func:`guided_run` tests it on a ReLU LeNet-1.)"""
    from .. import attribution as A

    return {
        "image (control)": lambda m, x, t: x[:, 0],
        "saliency": A.saliency,
        "Grad-CAM": lambda m, x, t: A.grad_cam(m, x, t, cam_layer),
        "occlusion": lambda m, x, t: A.occlusion(m, x, t, window=6, stride=2),
    }


def gradient_attributions() -> dict:
    """Saliency and guided backprop, the two methods :func:`guided_run` compares on a ReLU network."""
    from .. import attribution as A

    return {"saliency": A.saliency, "guided backprop": A.guided_backprop}


def relu_lenet1() -> nn.Module:
    """LeNet-1 with ReLU units and max-pooling (two of "what thirty years bought"): a network whose ReLU
    modules guided backprop changes."""
    return models.LeNet1(activation="relu", pool="max")


RELU_LENET1_LAYERS_TOP_DOWN = ("fc", "conv2", "conv1")     # its layers with weights, from the output down


def sanity_run(model: nn.Module, images: torch.Tensor, targets, layers, seed: int,
               mask: torch.Tensor | None = None, methods: dict | None = None) -> dict[str, list[float]]:
    """Adebayo et al.'s cascading randomization of ``layers`` (output first) with ``seed``, for ``methods``
    (default: :func:`lenet1_attributions`): ``{method: [rank correlation after each layer]}``, over the
    pixels of ``mask`` (default: :func:`attribution.visible_mask`, the pixels LeNet-1 reads)."""
    from .. import attribution as A

    mask = A.visible_mask(model, images.shape[-1]) if mask is None else mask
    return A.cascading_randomization(model, images, targets, methods or lenet1_attributions(), layers, seed=seed,
                                     mask=mask)


def guided_run(train_data, images: torch.Tensor, targets, seed: int, epochs: int) -> dict:
    """Guided backprop against saliency on a ReLU LeNet-1 (:func:`relu_lenet1`) trained with ``seed``: the
    cascading randomization of its layers (``{"sanity": {method: [correlation after fc, conv2, conv1]}``)
    and the control, two unrelated untrained ReLU LeNet-1s (``"unrelated": {method: correlation}``)."""
    env.seed_everything(seed)
    net = relu_lenet1()
    train.fit(net, train_data, epochs=epochs, lr=0.1, seed=seed, progress=False)
    methods = gradient_attributions()
    return {"sanity": sanity_run(net.cpu().eval(), images, targets, RELU_LENET1_LAYERS_TOP_DOWN, seed,
                                 methods=methods),
            "unrelated": unrelated_run(images, targets, seed, make=relu_lenet1, methods=methods)}


def unrelated_run(images: torch.Tensor, targets, seed: int, mask: torch.Tensor | None = None,
                  make=models.LeNet1, methods: dict | None = None) -> dict[str, float]:
    """The sanity check's control: two networks ``make()`` initialised independently (seeds ``1000 + 2 *
    seed`` and one more) and never trained share no weights, so maps that depend on the weights should
    not agree between them. Returns ``{method: mean rank correlation of their maps}`` over ``mask``
    (default: the pixels the network reads; ``torch.ones(H, W, dtype=bool)`` compares the whole frame)."""
    from .. import attribution as A

    nets = []
    for s in (1000 + 2 * seed, 1001 + 2 * seed):
        env.seed_everything(s)
        nets.append(make().eval())
    mask = A.visible_mask(nets[0], images.shape[-1]) if mask is None else mask
    return {name: A.rank_correlation(f(nets[0], images, targets), f(nets[1], images, targets), mask).mean().item()
            for name, f in (methods or lenet1_attributions()).items()}


LENET1_LAYERS_TOP_DOWN = ("fc", "pool2", "conv2", "pool1", "conv1")


def decision_claims(prof: env.Profile, seeds: int, progress: bool = True) -> list[dict]:
    """Lesson 06's claims with ``seeds`` seeds at profile ``prof``'s sizes, as rows like
    :func:`digit_claims`': the sanity check over the pixels LeNet-1 reads (Grad-CAM, occlusion and
    saliency all depend on its weights: their maps after randomization agree no more than two
    independently initialised networks' do: :func:`rules.check_weight_blind`); guided backprop against
    saliency on a ReLU LeNet-1 (:func:`guided_run`); and the shift test (LeNet-1 keeps more of its accuracy
    than both MLPs)."""
    from tqdm.auto import tqdm

    from .. import digits, loader

    train_data, test = digits.for_profile("train", prof), digits.for_profile("test", prof)
    probe, targets = loader.normalize(test[0][:16]), test[1][:16]
    finals, unrelated, shifts, guided = {}, {}, [], []
    for seed in tqdm(range(seeds), desc="lesson 06 claims", disable=not progress):
        env.seed_everything(seed)
        net = models.LeNet1()
        train.fit(net, train_data, **prof.lenet_recipe, seed=seed, progress=False)
        for name, curve in sanity_run(net.cpu().eval(), probe, targets, LENET1_LAYERS_TOP_DOWN, seed).items():
            finals.setdefault(name, []).append(curve[-1])
        for name, r in unrelated_run(probe, targets, seed).items():
            unrelated.setdefault(name, []).append(r)
        guided.append(guided_run(train_data, probe, targets, seed, prof.lenet_epochs))
        shifts.append(shift_run(train_data, test, seed, prof.lenet_epochs, shifts=(0, 1, 2, 3)))
    data = f"{len(train_data[1]):,} training and {len(test[1]):,} test digits"
    rows = []

    def row(claim, measured, control, control_name, *, higher, reproduced, asserted=True):
        rows.append(claim_row(claim, measured, control, control_name, higher=higher, reproduced=reproduced,
                              asserted=asserted, data=data))

    for name in ("Grad-CAM", "occlusion", "saliency"):
        verdict = check_weight_blind(finals[name], unrelated[name])
        row(f"{name} maps change when LeNet-1's weights are randomized: they agree with the trained maps no more "
            "than two unrelated LeNet-1s' maps agree (|rank correlation| over the pixels it reads)",
            np.abs(finals[name]), np.abs(unrelated[name]), "two unrelated networks", higher=False,
            reproduced=verdict["depends"])
        row(f"{name} maps of two unrelated LeNet-1s disagree (|rank correlation|; the sanity check's control)",
            np.abs(unrelated[name]), np.full(seeds, 0.5), "the 0.5 threshold", higher=False,
            reproduced=verdict["control_ok"])
    blind = check_weight_blind(finals["image (control)"], unrelated["image (control)"])
    row("the digit itself (a map that ignores the weights) fails the sanity check's control",
        np.abs(unrelated["image (control)"]), np.full(seeds, 0.5), "the 0.5 threshold", higher=True,
        reproduced=not blind["control_ok"])
    g_final = {m: [g["sanity"][m][-1] for g in guided] for m in ("saliency", "guided backprop")}
    g_top = {m: [g["sanity"][m][1] for g in guided] for m in ("saliency", "guided backprop")}
    g_unrelated = {m: [g["unrelated"][m] for g in guided] for m in ("saliency", "guided backprop")}
    gb = check_weight_blind(g_final["guided backprop"], g_unrelated["guided backprop"])
    row("guided backprop maps (ReLU LeNet-1) change when all its weights are randomized: no more agreement than "
        "two unrelated networks'", np.abs(g_final["guided backprop"]), np.abs(g_unrelated["guided backprop"]),
        "two unrelated networks", higher=False, reproduced=gb["depends"], asserted=False)
    closer = check_rise(g_top["saliency"], g_top["guided backprop"])
    row("guided backprop stays closer to the trained maps than saliency once fc and conv2 are random (ReLU "
        "LeNet-1; Adebayo et al.'s finding)", g_top["guided backprop"], g_top["saliency"], "saliency", higher=True,
        reproduced=closer["reproduced"], asserted=False)
    for index in (1, 2, 3):
        verdict = check_shift(shifts, index)
        best_mlp = np.max([verdict["kept"][n] for n in verdict["kept"] if n != "LeNet-1"], axis=0)
        row(f"LeNet-1 keeps more of its accuracy than both MLPs at a {index} px shift",
            verdict["kept"]["LeNet-1"], best_mlp, "the better MLP", higher=True,
            reproduced=verdict["holds"])
    return rows

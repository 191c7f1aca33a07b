"""Lesson 06's claims as experiments over seeds: the sanity check of attribution methods (with two unrelated
networks as its control) and the shift test (LeNet-1 against perceptrons)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .. import env, models, train
from .rules import check_shift, check_weight_blind, claim_row


def small_mlp(hidden: int = 4) -> nn.Module:
    """A multilayer perceptron 784 -> ``hidden`` -> 10 with ReLU, for ``N x 1 x 28 x 28`` digits:
    ``hidden=4`` has 3,190 parameters, LeNet-1's size (2,578); ``hidden=32`` has 25,450 and reaches
    about LeNet-1's accuracy."""
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 10))


SHIFT_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def shift_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   shifts=(0, 1, 2, 3, 4)) -> list[float]:
    """Test accuracy of ``model`` on uint8 digits ``images`` moved by each of ``shifts`` pixels,
    averaged over the four directions (right, left, down, up). Returns one accuracy per shift."""
    from ..augment import shift

    out = []
    for d in shifts:
        accs = [(train.predict(model, shift(images, d * dx, d * dy)).argmax(1) == labels).float().mean().item()
                for dx, dy in SHIFT_DIRECTIONS]
        out.append(float(np.mean(accs)))
    return out


SHIFT_MODELS = {"LeNet-1": models.LeNet1, "MLP 784-4-10": lambda: small_mlp(4),
                "MLP 784-32-10": lambda: small_mlp(32)}


def shift_run(train_data, test_data, seed: int, epochs: int, shifts=(0, 1, 2, 3, 4)) -> dict[str, list[float]]:
    """Train LeNet-1 and the two MLPs of :data:`SHIFT_MODELS` with ``seed`` and return
    ``{name: accuracy per shift}`` (:func:`shift_accuracy` on ``test_data``)."""
    out = {}
    for name, make in SHIFT_MODELS.items():
        env.seed_everything(seed)
        model = make()
        train.fit(model, train_data, epochs=epochs, lr=0.3 if name == "LeNet-1" else 0.1, seed=seed,
                  progress=False)
        out[name] = shift_accuracy(model, *test_data, shifts=shifts)
    return out


def lenet1_attributions(cam_layer: str = "act2") -> dict:
    """The methods lesson 06 compares, as ``{name: f(model, images, target) -> N x H x W}``, and the
    weight-blind control: the uint8 digit itself (``image``), recovered from the normalized input."""
    from .. import attribution as A

    return {
        "image (control)": lambda m, x, t: x[:, 0],
        "saliency": A.saliency,
        "guided backprop": A.guided_backprop,
        "Grad-CAM": lambda m, x, t: A.grad_cam(m, x, t, cam_layer),
        "occlusion": lambda m, x, t: A.occlusion(m, x, t, window=6, stride=2),
    }


def sanity_run(model: nn.Module, images: torch.Tensor, targets, layers, seed: int,
               mask: torch.Tensor | None = None) -> dict[str, list[float]]:
    """Adebayo et al.'s cascading randomization of ``layers`` (output first) with ``seed``, for the
    methods of :func:`lenet1_attributions`: ``{method: [rank correlation after each layer]}``, over the
    pixels of ``mask`` (default: :func:`attribution.visible_mask`, the pixels LeNet-1 reads)."""
    from .. import attribution as A

    mask = A.visible_mask(model, images.shape[-1]) if mask is None else mask
    return A.cascading_randomization(model, images, targets, lenet1_attributions(), layers, seed=seed, mask=mask)


def unrelated_run(images: torch.Tensor, targets, seed: int, mask: torch.Tensor | None = None,
                  make=models.LeNet1) -> dict[str, float]:
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
            for name, f in lenet1_attributions().items()}


LENET1_LAYERS_TOP_DOWN = ("fc", "pool2", "conv2", "pool1", "conv1")


def decision_claims(prof: env.Profile, seeds: int, progress: bool = True) -> list[dict]:
    """Lesson 06's claims with ``seeds`` seeds at profile ``prof``'s sizes, as rows like
    :func:`digit_claims`': the sanity check over the pixels LeNet-1 reads (Grad-CAM, occlusion and
    saliency all depend on its weights: their maps after randomization agree no more than two
    independently initialised networks' do) and the shift test (LeNet-1 keeps more of its accuracy than
    both MLPs)."""
    from tqdm.auto import tqdm

    from .. import digits, loader

    train_data, test = digits.for_profile("train", prof), digits.for_profile("test", prof)
    probe, targets = loader.normalize(test[0][:16]), test[1][:16]
    finals, unrelated, shifts = {}, {}, []
    for seed in tqdm(range(seeds), desc="lesson 06 claims", disable=not progress):
        env.seed_everything(seed)
        net = models.LeNet1()
        train.fit(net, train_data, epochs=prof.lenet_epochs, lr=0.3, batch_size=prof.batch_size, seed=seed,
                  progress=False)
        for name, curve in sanity_run(net.cpu().eval(), probe, targets, LENET1_LAYERS_TOP_DOWN, seed).items():
            finals.setdefault(name, []).append(curve[-1])
        for name, r in unrelated_run(probe, targets, seed).items():
            unrelated.setdefault(name, []).append(r)
        shifts.append(shift_run(train_data, test, seed, prof.lenet_epochs, shifts=(0, 1, 2, 3)))
    data = f"{len(train_data[1]):,} training and {len(test[1]):,} test digits"
    rows = []

    def row(claim, measured, control, control_name, higher, reproduced):
        rows.append(claim_row(claim, measured, control, control_name, higher, reproduced, True, data))

    for name in ("Grad-CAM", "occlusion", "saliency"):
        verdict = check_weight_blind(finals[name], unrelated[name])
        row(f"{name} maps change when LeNet-1's weights are randomized (|rank correlation| over the pixels it reads)",
            np.abs(finals[name]), np.abs(finals["image (control)"]), "the digit itself", False, verdict["depends"])
        row(f"{name} maps of two unrelated LeNet-1s disagree (|rank correlation|; the sanity check's control)",
            np.abs(unrelated[name]), np.full(seeds, 0.5), "the 0.5 threshold", False, verdict["control_ok"])
    for index in (1, 2, 3):
        verdict = check_shift(shifts, index)
        best_mlp = np.max([verdict["kept"][n] for n in verdict["kept"] if n != "LeNet-1"], axis=0)
        row(f"LeNet-1 keeps more of its accuracy than both MLPs at a {index} px shift",
            verdict["kept"]["LeNet-1"], best_mlp, "the better MLP", True, verdict["holds"])
    return rows

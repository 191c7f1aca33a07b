"""What made a network decide: occlusion, saliency, Grad-CAM and guided backprop, on top of captum.

Every function takes a model, a float batch ``images`` ``N x C x H x W`` (already normalized, as the model
reads it) and a ``target`` (one class for all images, or one class per image), and returns an
``N x H x W`` float32 tensor on the CPU at the input's size: how much each pixel mattered for that class.
The model is put in eval mode for the call and in-place ReLUs are made out-of-place (captum's backward
hooks cannot see through them); both are restored afterwards, also when the call fails, and captum
removes the hooks it adds.

* :func:`occlusion` (Zeiler & Fergus 2014): how much the class *probability* drops when a square of
  ``baseline`` hides the pixel (captum's ``Occlusion``).
* :func:`saliency` (Simonyan, Vedaldi & Zisserman 2013): the largest absolute gradient of the class score
  over the channels (captum's ``Saliency``).
* :func:`grad_cam` (Selvaraju et al. 2017): a layer's maps weighted by their average gradient, rectified
  and upsampled (captum's ``LayerGradCam``).
* :func:`guided_backprop` (Springenberg et al. 2015): the gradient with only positive signals passed back
  through each ReLU (captum's ``GuidedBackprop``), the largest absolute value over the channels.
"""
from __future__ import annotations

import copy
import numbers
import warnings
from typing import Sequence

import torch
import torch.nn as nn
from captum.attr import GuidedBackprop, LayerAttribution, LayerGradCam, Occlusion, Saliency
from scipy.stats import rankdata

from .checks import whole_number
from .layers import device_of, find_layer, for_gradients
from .loader import check_images


def _check_images(images: torch.Tensor, name: str = "images") -> None:
    check_images(images, name, kind="float", allow_empty=False)


def _targets(target, n: int, num_classes: int | None = None) -> torch.Tensor:
    """``target`` (an int, or one class per image) -> a long tensor of ``n`` classes."""
    if isinstance(target, bool) or target is None or isinstance(target, (str, bytes)):
        raise TypeError(f"target must be a class index (an int) or one per image, got {target!r}.")
    if isinstance(target, numbers.Integral):
        t = torch.full((n,), int(target), dtype=torch.long)
    else:
        try:
            t = torch.as_tensor(target)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"target must be a class index (an int) or one per image, got {target!r}.") from None
        if t.dim() == 0:
            t = t.view(1).expand(n)
        if t.dim() != 1 or len(t) != n or t.is_floating_point() or t.dtype == torch.bool:
            raise ValueError(f"target must be one int, or one int per image ({n} of them), got "
                             f"{target!r}.")
        t = t.long()
    if num_classes is not None and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(f"target must be a class between 0 and {num_classes - 1}, got {t.tolist()}.")
    return t


def _start(model: nn.Module, images: torch.Tensor, target) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked inputs on the model's device: ``(images, targets)``."""
    _check_images(images)
    if not torch.isfinite(images).all():
        raise ValueError("The images hold values that are not finite (NaN or inf): the model's answer is not a "
                         "number there, and no map can explain it. Check how they were made or normalized.")
    device = device_of(model)
    images = images.to(device)
    with torch.no_grad(), for_gradients(model):
        num_classes = model(images[:1]).shape[1]
    return images, _targets(target, len(images), num_classes).to(device)


def _per_pixel(attr: torch.Tensor, reduce: str) -> torch.Tensor:
    """``N x C x H x W`` -> ``N x H x W`` float32 on the CPU."""
    attr = attr.detach().float()
    out = attr.sum(1) if reduce == "sum" else attr.abs().amax(1)
    return out.cpu()


def probabilities(model: nn.Module) -> nn.Module:
    """``model`` followed by a softmax: its output is the class probabilities (for occlusion)."""
    return nn.Sequential(model, nn.Softmax(dim=1))


def occlusion(model: nn.Module, images: torch.Tensor, target, window: int, stride: int,
              baseline: float = 0.0) -> torch.Tensor:
    """Occlusion maps ``N x H x W``: for every pixel, the average drop of the target class's probability
    over the positions of a ``window x window`` square of value ``baseline`` (0 is the dataset's mean
    grey in normalized images) that cover it, the square moved by ``stride`` pixels. Positive: hiding
    the pixel lowered the probability."""
    window = whole_number(window, "window", expected="a positive int (pixels)")
    stride = whole_number(stride, "stride", expected="a positive int (pixels)")
    if stride > window:
        raise ValueError(f"stride {stride} is larger than the window {window}: some pixels would never be "
                         "covered. Use a stride of at most the window.")
    images, t = _start(model, images, target)
    if window > min(images.shape[-2:]):
        raise ValueError(f"window {window} is larger than the images ({images.shape[-2]} x {images.shape[-1]}).")
    channels = images.shape[1]
    with for_gradients(model), torch.no_grad():
        # About 64 occluded images per forward pass: captum's default of one was 5-7x slower on LeNet-1.
        attr = Occlusion(probabilities(model)).attribute(
            images, target=t, sliding_window_shapes=(channels, window, window),
            strides=(channels, stride, stride), baselines=float(baseline),
            perturbations_per_eval=max(1, 64 // len(images)))
    return _per_pixel(attr, "sum") / channels


def saliency(model: nn.Module, images: torch.Tensor, target) -> torch.Tensor:
    """Saliency maps ``N x H x W``: the largest absolute gradient of the target class's score (logit)
    with respect to each pixel, over the colour channels."""
    images, t = _start(model, images, target)
    with for_gradients(model):
        attr = Saliency(model).attribute(images.detach().requires_grad_(True), target=t, abs=True)
    return _per_pixel(attr, "max")


def guided_backprop(model: nn.Module, images: torch.Tensor, target) -> torch.Tensor:
    """Guided-backprop maps ``N x H x W``: the gradient of the target score with only positive signals
    passed back through every ``nn.ReLU`` module, as its largest absolute value over the channels.
    (On a network without ReLU modules it is the plain gradient.)"""
    images, t = _start(model, images, target)
    with for_gradients(model), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")  # they are removed
        attr = GuidedBackprop(model).attribute(images.detach().requires_grad_(True), target=t)
    return _per_pixel(attr, "max")


def grad_cam(model: nn.Module, images: torch.Tensor, target, layer: nn.Module | str) -> torch.Tensor:
    """Grad-CAM maps ``N x H x W``: ``layer``'s output maps (``N x K x h x w``), each weighted by the
    average gradient of the target score over it, summed, rectified (ReLU) and upsampled bilinearly to
    the input's size. ``layer``: a module of the model or its name (the last convolution's ReLU is
    the usual choice)."""
    module = find_layer(model, layer)
    images, t = _start(model, images, target)
    used = []
    handle = module.register_forward_hook(lambda *_: used.append(True))
    try:
        with torch.no_grad(), for_gradients(model):
            model(images[:1])
    finally:
        handle.remove()
    if not used:
        raise ValueError(f"{layer!r} is not used by {type(model).__name__}'s forward pass: Grad-CAM needs a layer the "
                         "input goes through (e.g. the last convolution's activation).")
    with for_gradients(model):
        cam = LayerGradCam(model, module).attribute(images.detach().requires_grad_(True), target=t,
                                                    relu_attributions=True)
    if cam.dim() != 4:
        raise ValueError(f"Grad-CAM needs a layer with spatial maps (N x K x h x w); {layer!r} gives "
                         f"{tuple(cam.shape)}. Pick a convolution or its activation.")
    cam = LayerAttribution.interpolate(cam.detach().float(), tuple(images.shape[-2:]), "bilinear")
    return cam[:, 0].cpu()


def mass_in(maps: torch.Tensor, region: tuple[slice, slice]) -> torch.Tensor:
    """Share of each map's absolute attribution inside ``region`` (rows, cols): ``N`` values in [0, 1].
    ``maps``: ``N x H x W`` (or one ``H x W`` map). A region that misses the maps is an error, not 0."""
    maps = maps[None] if maps.dim() == 2 else maps
    h, w = maps.shape[-2:]
    rows, cols = (range(h)[region[0]], range(w)[region[1]]) if all(isinstance(r, slice) for r in region) else ((), ())
    if len(rows) == 0 or len(cols) == 0:
        raise ValueError(f"region {region} holds no pixel of the {h} x {w} maps: give (rows, cols) slices inside them.")
    a = maps.abs()
    total = a.flatten(1).sum(1).clamp_min(1e-12)
    return a[:, region[0], region[1]].flatten(1).sum(1) / total


def visible_mask(model: nn.Module, size: int) -> torch.Tensor:
    """The input pixels ``model`` reads the digit from, as a bool ``size x size`` mask: for LeNet-1 the
    20 x 20 box its :class:`models.DigitFrame` crops and shrinks. The rest of the frame reaches it only
    through the image's background level (its darkest value, tied over the blank border), which the frame
    puts back around the shrunken digit: a map's values there say how much that one level mattered, the
    same for every network, not where the digit is. Other networks read every pixel."""
    mask = torch.ones(size, size, dtype=torch.bool)
    frame = getattr(model, "frame", None)
    if frame is not None and hasattr(frame, "box"):
        start = (size - frame.box) // 2
        mask[:] = False
        mask[start:start + frame.box, start:start + frame.box] = True
    return mask


def rank_correlation(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Spearman rank correlation between two batches of maps (``N x H x W`` each): ``N`` values in
    [-1, 1] (tied values share their average rank; 0 when a map is constant). ``mask`` (bool ``H x W``)
    compares only those pixels: pixels that are 0 in every map tie, and inflate the correlation of any
    two maps (pass :func:`visible_mask` to compare only what the network sees)."""
    if a.shape != b.shape:
        raise ValueError(f"Expected two batches of maps of the same shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}.")
    if a.dim() == 2:          # one H x W map each, not H maps of W pixels
        a, b = a[None], b[None]
    if a.dim() != 3:
        raise ValueError(f"Expected maps N x H x W (or one H x W map), got shape {tuple(a.shape)}.")
    if mask is not None:
        if mask.shape != a.shape[-2:] or mask.dtype != torch.bool:
            raise ValueError(f"Expected a bool mask of shape {tuple(a.shape[-2:])}, got {mask.dtype} "
                             f"{tuple(mask.shape)}.")
        a, b = a[:, mask], b[:, mask]
    ra = torch.from_numpy(rankdata(a.flatten(1).double().numpy(), axis=1))
    rb = torch.from_numpy(rankdata(b.flatten(1).double().numpy(), axis=1))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    den = ra.norm(dim=1) * rb.norm(dim=1)
    const = den == 0
    return torch.where(const, torch.zeros_like(den), (ra * rb).sum(1) / den.clamp_min(1e-12)).float()


def cascading_randomization(model: nn.Module, images: torch.Tensor, target, methods: dict,
                            layers: Sequence[str], seed: int = 0,
                            mask: torch.Tensor | None = None) -> dict[str, list[float]]:
    """Adebayo et al.'s (2018) sanity check: re-initialize ``layers`` one after the other (the list's
    order, usually from the output back to the input; each stays random) in a copy of ``model``, and
    after each step compare every method's maps with the trained model's by rank correlation.

    ``methods``: ``{name: f(model, images, target) -> N x H x W maps}``. Returns ``{name: [mean rank
    correlation over the images after randomizing layers[:1], layers[:2], ...]}``. A method whose maps
    stay correlated while the weights are destroyed does not explain what the network learned.
    ``mask``: compare only those pixels (:func:`rank_correlation`). The model itself is not changed.
    """
    reference = {name: f(model, images, target) for name, f in methods.items()}
    scrambled = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    out = {name: [] for name in methods}
    for layer in layers:
        module = find_layer(scrambled, layer)
        params = list(module.parameters(recurse=False))
        if not params:
            raise ValueError(f"Layer {layer!r} has no weights to randomize.")
        with torch.no_grad():
            for p in params:
                # The same spread as the trained weights, in a random arrangement.
                p.copy_(torch.randn(p.shape, generator=gen).to(p) * p.std().clamp_min(1e-3))
        for name, f in methods.items():
            out[name].append(rank_correlation(reference[name], f(scrambled, images, target), mask).mean().item())
    return out

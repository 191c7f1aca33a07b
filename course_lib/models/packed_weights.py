"""A trained AlexNet's weights packed for shipping with the package, and unpacked again.

Every layer is shipped, the fully connected ones too, so that the class scores a lesson shows are trained. At
10 classes AlexNet has 57 million parameters (58 with one stream): 114 MB in float16. Two things make it
31 MB (34 with one stream):

- **fc6 folded.** At the course's 128 px, pool5 gives 3 x 3 maps and ``AdaptiveAvgPool2d((6, 6))`` repeats
  each value over a 2 x 2 block, so fc6's 9,216 weights a unit act as 2,304 sums of four: :func:`fold_fc6`
  keeps the sums (4096 x 2304), :func:`unfold_fc6` spreads each sum evenly over its four weights again. The
  unfolded network gives the trained one's outputs exactly (up to float rounding) whenever pool5 is 3 x 3
  (inputs of 127 to 158 px) or 1 x 1 (63 to 94 px).
- **fc6 and fc7 in int8**, with a float32 scale a row (each unit's largest weight maps to 127): 26 of the 28
  million weights left. The other weights and every bias stay float16. :func:`pack`'s round trip is measured
  on Imagenette's validation images in each reference's record.
"""

from __future__ import annotations

import torch

INT8_LAYERS = ("fc6.weight", "fc7.weight")
POOL5, POOL = 3, 6      # pool5's size at 128 px, and the adaptive pool's output size


def fold_fc6(weight: torch.Tensor, channels: int = 256) -> torch.Tensor:
    """fc6's weights ``units x (channels * 6 * 6)`` -> ``units x (channels * 3 * 3)``: each 2 x 2 block of
    the 6 x 6 grid summed (the four positions the adaptive pool fills with one pool5 value)."""
    units = weight.shape[0]
    if weight.shape[1] != channels * POOL * POOL:
        raise ValueError(f"fc6's weights must be units x {channels * POOL * POOL}, got {tuple(weight.shape)}.")
    grid = weight.reshape(units, channels, POOL5, POOL // POOL5, POOL5, POOL // POOL5)
    return grid.sum(dim=(3, 5)).reshape(units, channels * POOL5 * POOL5)


def unfold_fc6(folded: torch.Tensor, channels: int = 256) -> torch.Tensor:
    """:func:`fold_fc6` undone for 3 x 3 pool5 maps: ``units x (channels * 3 * 3)`` -> ``units x (channels *
    6 * 6)``, each sum spread evenly over its 2 x 2 block (so that the fc6 outputs at 128 px are unchanged)."""
    units = folded.shape[0]
    if folded.shape[1] != channels * POOL5 * POOL5:
        raise ValueError(f"folded fc6 weights must be units x {channels * POOL5 * POOL5}, got {tuple(folded.shape)}.")
    grid = folded.reshape(units, channels, POOL5, POOL5) / (POOL // POOL5) ** 2
    grid = grid.repeat_interleave(POOL // POOL5, dim=2).repeat_interleave(POOL // POOL5, dim=3)
    return grid.reshape(units, channels * POOL * POOL)


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``rows x columns`` float weights -> ``(int8 rows x columns, float32 scale per row)``, symmetric: a row's
    largest magnitude becomes 127 (an all-zero row gets scale 1). The scale stays float32: in float16 a row of
    small weights (largest below about 8e-3) would get a subnormal, imprecise scale."""
    w = weight.detach().float()
    scale = w.abs().amax(dim=1) / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def pack(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An AlexNet state dict (float) -> the shipped dict: fc6 folded (:func:`fold_fc6`), ``fc6.weight`` and
    ``fc7.weight`` as ``NAME.int8`` and ``NAME.scale`` (:func:`quantize_rows`), everything else float16;
    contiguous CPU tensors."""
    packed = {}
    for name, value in state.items():
        value = value.detach().cpu().float()
        if name == "fc6.weight":
            value = fold_fc6(value)
        if name in INT8_LAYERS:
            packed[name + ".int8"], packed[name + ".scale"] = quantize_rows(value)
        else:
            packed[name] = value.half()
    return {k: v.contiguous() for k, v in packed.items()}


def unpack(packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """:func:`pack` undone: a float32 state dict for :class:`models.AlexNet` (fc6 unfolded, the int8 layers
    scaled back). Raises ``ValueError`` when an int8 layer lacks its scale or fc6 has the wrong shape."""
    state = {}
    for name, value in packed.items():
        if name.endswith(".scale"):
            continue
        if name.endswith(".int8"):
            base = name[:-len(".int8")]
            if base + ".scale" not in packed:
                raise ValueError(f"{name} has no {base}.scale beside it.")
            state[base] = value.float() * packed[base + ".scale"].float()[:, None]
        else:
            state[name] = value.float()
    if "fc6.weight" in state:
        state["fc6.weight"] = unfold_fc6(state["fc6.weight"])
    return state

"""Local response normalization as lesson 09's networks compute it (``BandLocalResponseNorm``: a 1 x 1
convolution of the squared maps with a band of ones) against ``nn.LocalResponseNorm``: one forward and
backward pass at AlexNet's conv1 and conv2 map sizes, the median over repeats, and the largest difference
between the two outputs.

    python benchmarks/band_lrn.py            # on this machine's CPU, its threads
"""

import statistics
import sys

import torch
import torch.nn as nn

from common import machine, timings

from course_lib.models.alexnet_variants import BandLocalResponseNorm

SHAPES = {   # batch x maps x side x side: lesson 09's cpu profile (width 0.25, 96 px), then full width at 224 px
    "conv1, width 0.25, 96 px, batch 64": (64, 24, 23, 23),
    "conv2, width 0.25, 96 px, batch 64": (64, 64, 11, 11),
    "conv1, full width, 224 px, batch 32": (32, 96, 55, 55),
    "conv2, full width, 224 px, batch 32": (32, 256, 27, 27),
}


def main() -> int:
    print(f"# Local response normalization, forward + backward; {machine()}, {torch.get_num_threads()} threads")
    print("\n| maps | nn.LocalResponseNorm | BandLocalResponseNorm | speed-up | largest difference |")
    print("|---|---|---|---|---|")
    theirs, ours = nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0), BandLocalResponseNorm(5, 5e-4, 0.75, 2.0)
    for name, shape in SHAPES.items():
        x = (torch.randn(shape) * 10).requires_grad_()
        med = {}
        for label, layer in (("torch", theirs), ("band", ours)):
            step = lambda layer=layer, x=x: layer(x).sum().backward()
            med[label] = statistics.median(timings(step, repeat=10, warmup=2))
        diff = (theirs(x) - ours(x)).abs().max().item()
        print(f"| {name} | {1000 * med['torch']:.1f} ms | {1000 * med['band']:.1f} ms | "
              f"{med['torch'] / med['band']:.1f}x | {diff:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the reference AlexNets' build runs at (``course_lib/instructor/alexnet_recipe.py``): a training step of
AlexNet (both streams, 128 px, batch 128, bf16 autocast where the CPU has it) with torch's LRN against LRN as a
band (``models.alexnet.StreamLocalResponseNorm``, the network's own), each contiguous and channels-last; the
best of a few steps, and each setting's speed-up over the first, measured in the same run.

    python benchmarks/reference_recipe.py [--threads 1] [--steps 4]
"""

import argparse

import torch
import torch.nn.functional as F

from common import machine, timings

from course_lib import models, train


class TorchStreamLocalResponseNorm(torch.nn.LocalResponseNorm):
    """The baseline: torch's ``nn.LocalResponseNorm`` on each stream's maps apart."""

    def __init__(self, streams: int, size: int, alpha: float, beta: float, k: float):
        super().__init__(size, alpha, beta, k)
        self.streams = streams

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([super(TorchStreamLocalResponseNorm, self).forward(p) for p in x.chunk(self.streams, 1)], 1)


def network(streams: int, band: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = models.AlexNet(num_classes=10, streams=streams)     # its LRN is the band
    if not band:
        for name in ("norm1", "norm2"):
            old = getattr(model, name)
            setattr(model, name, TorchStreamLocalResponseNorm(streams, old.size, old.alpha, old.beta, old.k))
    return model


def seconds_a_step(model: torch.nn.Module, channels_last: bool, steps: int, batch_size: int = 128,
                   size: int = 128) -> float:
    """The fastest of ``steps`` SGD steps (forward, backward, update) on one random batch."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch_size, 3, size, size), torch.randint(0, 10, (batch_size,))
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    bf16 = train.cpu_has_bf16()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return min(timings(step, steps, warmup=1))      # the first step loads the kernels: not timed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"# {machine()}; {args.threads} thread(s); bf16 autocast: {train.cpu_has_bf16()}")
    print("\n| network | LRN | layout | s a step | speed-up |\n|---|---|---|---|---|")
    for streams in (2, 1):
        base = None
        for band in (False, True):
            for channels_last in (False, True):
                s = seconds_a_step(network(streams, band), channels_last, args.steps)
                base = base or s
                print(f"| {streams} stream(s) | {'band' if band else 'torch'} | "
                      f"{'channels-last' if channels_last else 'contiguous'} | {s:.2f} | {base / s:.2f}x |", flush=True)


if __name__ == "__main__":
    main()

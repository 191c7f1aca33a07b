"""Images per second of course_lib's fit against a plain DataLoader + TensorDataset loop.

Same model (LeNet-1), same data (uint8 digits, 28x28), same batch size and optimizer, in one run.
The baseline is the obvious PyTorch recipe: a TensorDataset of float images, a shuffling DataLoader,
and moving each batch to the device. The ceiling is the model alone: ``train.train_step`` (the step
``fit`` itself runs) on one batch that is already prepared. Targets (issue 12, 41): >= 1.0x the plain loop
on 2 CPU cores, >= 1.5x on a GPU.

The machine this runs on is shared: other work takes cores at random moments, and with 2 torch threads one
preempted thread stalls the other at every operation (measured below: 2 threads fell to 1/10 of 1 thread's
speed under a load of 6). So the two loops are measured in *pairs*, one right after the other, over
``--repeats`` pairs, and the figure is the median of the pairs' ratios with its range; the machine's load
(``os.getloadavg``) is printed with it. ``--breakdown`` adds where one step's time goes (data, forward,
backward, optimizer) against the arithmetic the step needs.

    python benchmarks/fit_throughput.py [--threads 2] [--repeats 5] [--batch 64] [--breakdown]
"""

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from common import machine, sync

from course_lib import digits, env, loader, models, train

EPOCHS = 2


def baseline(images, labels, device, batch):
    dataset = torch.utils.data.TensorDataset(loader.normalize(images), labels)
    batch_loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True)
    model = models.LeNet1().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    start = time.perf_counter()
    for _ in range(EPOCHS):
        for x, y in batch_loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    sync(device)
    return EPOCHS * len(labels) / (time.perf_counter() - start)


def course(images, labels, device, batch):
    model = models.LeNet1()
    start = time.perf_counter()
    train.fit(model, (images, labels), epochs=EPOCHS, batch_size=batch, progress=False, device=device)
    sync(device)
    return EPOCHS * len(labels) / (time.perf_counter() - start)


def breakdown(images, labels, device, batch, steps=100):
    """Milliseconds per step in data (the TensorLoader's batch), forward + loss, backward and optimizer, and the
    multiply-adds of one training step (forward's convolutions and linear layer, as computed, times 3)."""
    model = models.LeNet1().to(device)
    opt = train.make_optimizer(model, lr=0.05)
    batches = loader.TensorLoader(images, labels, batch, shuffle=True, device=device)
    parts = dict.fromkeys(("data", "forward", "backward", "optimizer"), 0.0)
    it, done = iter(batches), 0
    while done < steps + 10:
        t0 = time.perf_counter()
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(batches)
            continue
        t1 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        sync(device)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sync(device)
        t3 = time.perf_counter()
        opt.step()
        sync(device)
        t4 = time.perf_counter()
        if done >= 10:
            for k, v in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                parts[k] += 1000 * v / steps
        done += 1
    macs = 0
    def count(module, inputs, output):
        nonlocal macs
        w = module.weight
        macs += output.numel() // output.shape[1] * w.numel() if w.dim() == 4 else output.shape[0] * w.numel()
    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv2d,
                                                                                       torch.nn.Linear))]
    hooks.append(model.conv2.register_forward_hook(count))   # the sparse conv runs as a dense 12 x 4 x 5 x 5 one
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return parts, 3 * macs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--breakdown", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = env.device()
    print(machine(), f"| {torch.get_num_threads()} torch threads | load before {os.getloadavg()[0]:.2f}")
    images, labels = digits.mnist_sample("train")
    images, labels = images.repeat(3, 1, 1, 1), labels.repeat(3)  # 12,000: the 4,000 real digits 3 times
    env.seed_everything(0)
    course(images[:512], labels[:512], device, args.batch)  # warm-up (kernels, allocator)
    pairs = []
    for i in range(args.repeats):   # a pair: fit then the loop, or the loop then fit (alternating)
        first, second = (course, baseline) if i % 2 == 0 else (baseline, course)
        a, b = first(images, labels, device, args.batch), second(images, labels, device, args.batch)
        fast, slow = (a, b) if first is course else (b, a)
        pairs.append((fast, slow, os.getloadavg()[0]))
        print(f"  pair {i + 1}: fit {fast:,.0f} images/s, DataLoader loop {slow:,.0f} images/s, ratio "
              f"{fast / slow:.2f}x (load {pairs[-1][2]:.2f})", flush=True)
    ratios = [f / s for f, s, _ in pairs]
    print(f"fit_throughput ({device.type}, LeNet-1, {len(labels)} images x {EPOCHS} epochs, batch {args.batch}, "
          f"{args.threads} threads, {args.repeats} pairs): fit / DataLoader loop median "
          f"{statistics.median(ratios):.2f}x "
          f"(range {min(ratios):.2f}-{max(ratios):.2f}; target >= 1.0x), best fit {max(f for f, _, _ in pairs):,.0f} "
          f"images/s, best loop {max(s for _, s, _ in pairs):,.0f}; load {min(p[2] for p in pairs):.2f}-"
          f"{max(p[2] for p in pairs):.2f}")
    if args.breakdown:
        parts, macs = breakdown(images, labels, device, args.batch)
        total = sum(parts.values())
        shares = ", ".join(f"{k} {v:.2f} ms ({100 * v / total:.0f} %)" for k, v in parts.items())
        print(f"one step of {args.batch} images, {total:.2f} ms: {shares}")
        print(f"  arithmetic: {macs / args.batch / 1e3:.0f} k multiply-adds per image and step, "
              f"{2 * macs / (total / 1000) / 1e9:.1f} GFLOP/s achieved ({args.batch / total * 1000:,.0f} images/s)")


if __name__ == "__main__":
    main()

"""Images per second of course_lib's fit against a plain DataLoader + TensorDataset loop.

Same model (LeNet-1), same data (uint8 digits, 28x28), same batch size and optimizer, in one run.
The baseline is the obvious PyTorch recipe: a TensorDataset of float images, a shuffling DataLoader,
and moving each batch to the device. The ceiling is the model alone: ``train.train_step`` (the step
``fit`` itself runs) on one batch that is already prepared. Targets (issue 12): >= 1.0x the plain loop
on 2 CPU cores, >= 1.5x on a GPU.

    python benchmarks/fit_throughput.py
"""

import time

import torch
import torch.nn.functional as F

from common import machine, sync

from course_lib import digits, env, loader, models, train

EPOCHS, BATCH = 6, 64


def baseline(images, labels, device):
    dataset = torch.utils.data.TensorDataset(loader.normalize(images), labels)
    batch_loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)
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


def course(images, labels, device):
    model = models.LeNet1()
    start = time.perf_counter()
    train.fit(model, (images, labels), epochs=EPOCHS, batch_size=BATCH, progress=False, device=device)
    sync(device)
    return EPOCHS * len(labels) / (time.perf_counter() - start)


def ceiling(device, steps=200):
    """The model alone: the same training step on one batch that is already prepared (no data work)."""
    model = models.LeNet1().to(device)
    opt = train.make_optimizer(model, lr=0.05)
    x, y = torch.randn(BATCH, 1, 28, 28, device=device), torch.randint(0, 10, (BATCH,), device=device)
    for i in range(steps + 20):
        if i == 20:
            sync(device)
            start = time.perf_counter()
        train.train_step(model, opt, x, y)
    sync(device)
    return steps * BATCH / (time.perf_counter() - start)


def main():
    device = env.device()
    print(machine())
    images, labels = digits.mnist_sample("train")
    images, labels = images.repeat(3, 1, 1, 1), labels.repeat(3)  # 12,000: the 4,000 real digits 3 times
    env.seed_everything(0)
    course(images[:512], labels[:512], device)  # warm-up (kernels, allocator)
    # interleaved, best of three each, so that a noisy neighbour hurts both alike
    fast, slow, top = 0.0, 0.0, 0.0
    for _ in range(3):
        fast = max(fast, course(images, labels, device))
        slow = max(slow, baseline(images, labels, device))
        top = max(top, ceiling(device))
    print(f"fit_throughput ({device.type}, LeNet-1, {len(labels)} images x {EPOCHS} epochs, batch {BATCH}, best of 3):")
    print(f"  course fit {fast:,.0f} images/s, DataLoader loop {slow:,.0f} images/s, ratio {fast / slow:.2f}x "
          "(target >= 1.0x on 2 CPU cores)")
    print(f"  model-only ceiling {top:,.0f} images/s: fit runs at {100 * fast / top:.0f} % of it, the DataLoader "
          f"loop at {100 * slow / top:.0f} %; no loader can beat {top / slow:.2f}x here")


if __name__ == "__main__":
    main()

"""The AlexNet input pipeline: the course's against torchvision's ImageFolder + DataLoader, in one run.

(1) data only: training-ready batches per second (decoded, resized, augmented, normalized, on the
    training device). Both sides do AlexNet's augmentation: a random 128 px crop of the image at
    146 px (as 224 of 256), flipped half the time. Course: images decoded once into a uint8 cache at
    146 px (time reported apart), kept on the device, cropped a batch at a time. Baseline: ImageFolder +
    PIL transforms (Resize, RandomCrop, flip, ToTensor, Normalize) + DataLoader with the fastest worker
    count tried.
    Target: >= 10x on a 2-core CPU.
(2) end to end: AlexNet training images/s with each pipeline, as a fraction of the same model fed a
    synthetic batch already on the device (the model-only ceiling). Target on a GPU: >= 90 %.

The images are real photos (scikit-image's, 10 classes, random crops saved as 160 px JPEGs, the
Imagenette-160 layout), made on the machine: no download.

    python benchmarks/alexnet_pipeline.py [--per-class 100] [--batch-size 64]
"""

import argparse
import os
import time

import torch
import torch.nn.functional as F
from torchvision import datasets, transforms

from common import machine, sync

from course_lib import augment, env, files, imagenette, loader, models, train

SIZE = 128
CACHE = round(SIZE * 8 / 7)  # 146: the crops are 7/8 of the cached side, as 224 is of 256


def course_batches(images, labels, batch_size, device):
    # drop_last on both real feeds: the synthetic ceiling never runs a short final batch either
    return loader.TensorLoader(images, labels, batch_size, shuffle=True, device=device, drop_last=True,
                             channels_last=device.type == "cuda", augment=augment.crop_flip(SIZE))


def imagefolder_loader(folder, batch_size, workers, device):
    tf = transforms.Compose([transforms.Resize(CACHE), transforms.RandomCrop(SIZE), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(loader.IMAGENET_MEAN, loader.IMAGENET_STD)])
    return torch.utils.data.DataLoader(datasets.ImageFolder(folder, tf), batch_size=batch_size, shuffle=True,
                                       num_workers=workers, pin_memory=device.type == "cuda",
                                       persistent_workers=workers > 0, drop_last=True)


def batches_per_second(loader, device, epochs):
    """Batches per second over ``epochs`` epochs, each batch moved to ``device`` and synchronized."""
    for x, _ in loader:  # warm-up epoch (workers start, caches fill)
        x.to(device, non_blocking=True)
    sync(device)
    start, count = time.perf_counter(), 0
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            count += 1
    sync(device)
    return count / (time.perf_counter() - start)


def make_step(device, num_classes):
    """One AlexNet training step, set up the way ``train.fit`` does it (AMP and channels-last on CUDA)."""
    model = models.AlexNet(num_classes=num_classes).to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    amp = train._autocast_dtype(device)

    def step(x, y):
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def train_images_per_second(batches, step, device, max_steps):
    """Images/s of ``step`` over at most ``max_steps`` batches drawn from ``batches()`` (after 3 warm-up steps)."""
    it = iter(batches())
    for _ in range(3):
        x, y = next(it)
        step(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
    sync(device)
    start, seen, steps = time.perf_counter(), 0, 0
    while steps < max_steps:
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(batches())
            continue
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        step(x, y)
        seen, steps = seen + len(y), steps + 1
    sync(device)
    return seen / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-class", type=int, default=100, help="photos per class (10 classes)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, nargs="*", default=None, help="worker counts to try")
    args = parser.parse_args()
    device = env.device()
    on_gpu = device.type == "cuda"
    batch_size = args.batch_size or (128 if on_gpu else 32)
    workers_tried = args.workers if args.workers is not None else sorted({0, 1, 2, min(8, os.cpu_count() or 1)})
    print(machine())

    root = imagenette.offline_folder(files.data_root() / f"benchmark-{args.per_class}", train_per_class=args.per_class,
                                   val_per_class=1)
    folder = root / "imagenette2-160" / "train"
    start = time.perf_counter()
    split = imagenette.load_split("train", root=root, download=False, resolution=CACHE, progress=False)
    cache_seconds = time.perf_counter() - start
    n = len(split.labels)
    print(f"{n} JPEGs (160 px) in 10 classes; course cache built once in {cache_seconds:.1f} s "
          f"(excluded below), {split.images.numel() / 2**20:.0f} MiB uint8")

    # (1) data only
    epochs = 5 if on_gpu else 2
    course_rate = batches_per_second(course_batches(split.images, split.labels, batch_size, device), device, epochs)
    folder_rates = {w: batches_per_second(imagefolder_loader(folder, batch_size, w, device), device, 1)
                    for w in workers_tried}
    best_w = max(folder_rates, key=folder_rates.get)
    print(f"(1) data only, batches of {batch_size} at {SIZE} px on {device.type}:")
    print(f"    course pipeline {course_rate:,.1f} batches/s; ImageFolder+DataLoader "
          + ", ".join(f"{w} workers {r:,.1f}" for w, r in folder_rates.items())
          + f" -> ratio {course_rate / folder_rates[best_w]:.1f}x against the fastest (target >= 10x on a 2-core CPU)")

    # (2) end to end
    max_steps = 200 if on_gpu else 4
    step = make_step(device, 10)
    synthetic_x = torch.randn(batch_size, 3, SIZE, SIZE, device=device)
    synthetic_y = torch.randint(0, 10, (batch_size,), device=device)
    ceiling = train_images_per_second(lambda: iter(lambda: (synthetic_x, synthetic_y), None), step, device, max_steps)
    course_loader = course_batches(split.images, split.labels, batch_size, device)  # moved to the device once
    with_course = train_images_per_second(lambda: course_loader, step, device, max_steps)
    folder_loader = imagefolder_loader(folder, batch_size, best_w, device)
    with_folder = train_images_per_second(lambda: folder_loader, step, device, max_steps)
    print(f"(2) end to end, AlexNet training on {device.type}, batch {batch_size}, {max_steps} steps each:")
    print(f"    model-only ceiling {ceiling:,.0f} images/s; course pipeline {with_course:,.0f} images/s "
          f"({100 * with_course / ceiling:.0f} % of ceiling, target >= 90 % on a GPU); ImageFolder "
          f"({best_w} workers) {with_folder:,.0f} images/s ({100 * with_folder / ceiling:.0f} %)")


if __name__ == "__main__":
    main()

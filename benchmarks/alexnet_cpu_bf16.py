"""AlexNet on the CPU in bfloat16 autocast against float32, in one run: training images/s of both, and (with
``--accuracy``) the top-1 of the same short training run in each precision, so that the speed-up is only
claimed where accuracy holds.

``fit`` trains networks of a million parameters or more in bf16 autocast on CPUs that compute bf16 natively
(``train.cpu_has_bf16``: AVX512-BF16 or AMX); ``COURSE_BF16_CPU=0`` turns it off. This measures what that buys.

    python benchmarks/alexnet_cpu_bf16.py [--threads 2] [--batch-size 64] [--size 128]
    python benchmarks/alexnet_cpu_bf16.py --accuracy        # needs Imagenette ($COURSE_IMAGENETTE)
"""

import argparse
import os
import time

import torch
import torch.nn.functional as F

from common import machine

from course_lib import env, models, train


def images_per_second(streams: int, dtype, batch_size: int, size: int, steps: int = 4) -> float:
    """Training steps of AlexNet (``streams``) on a random batch, autocast to ``dtype`` (None: float32)."""
    torch.manual_seed(0)
    model = models.AlexNet(num_classes=10, streams=streams)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch_size, 3, size, size), torch.randint(0, 10, (batch_size,))

    def step():
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()                       # the first step loads the kernels: not timed
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--accuracy", action="store_true", help="also train both precisions on Imagenette")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{machine()}; {args.threads} threads; native bf16: {train.cpu_has_bf16()}; load {os.getloadavg()[0]:.1f}")
    for streams in (2, 1):
        fp32 = images_per_second(streams, None, args.batch_size, args.size)
        bf16 = images_per_second(streams, torch.bfloat16, args.batch_size, args.size)
        print(f"AlexNet, {streams} stream(s), {args.size} px, batch {args.batch_size}: float32 {fp32:.1f} images/s, "
              f"bf16 autocast {bf16:.1f} images/s: {bf16 / fp32:.2f}x")
    if args.accuracy:
        import dataclasses

        from course_lib import imagenette, trained

        prof = dataclasses.replace(env.profile("cpu"), alexnet_epochs=3)
        d = imagenette.for_profile(prof)
        for setting in ("0", "1"):
            os.environ["COURSE_BF16_CPU"] = setting
            start = time.perf_counter()
            _, history = trained.train_alexnet(prof, d, streams=2, seed=0, progress=False)
            seconds = time.perf_counter() - start
            print(f"{'bf16' if setting == '1' else 'float32'}: top-1 {history.last['val_accuracy']:.3f} after "
                  f"{prof.alexnet_epochs} epochs of {len(d.train_labels):,} images, {seconds:.0f} s")


if __name__ == "__main__":
    main()

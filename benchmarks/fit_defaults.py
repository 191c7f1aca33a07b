"""fit's defaults against the plain loop, in accuracy: does fit(model, data, epochs=10) need tuning?

The plain loop is what a learner would write: TensorDataset + DataLoader, SGD with momentum 0.9 at a
constant learning rate of 0.1, batch 64. Both train the same LeNet-1 (as published) from the same
initial weights for 10 epochs, on MNIST when it is on disk or downloadable, else on the shipped 5,000-digit
sample. Prints the test error of each over 3 seeds. Target: fit's mean error at most the plain loop's.

    python benchmarks/fit_defaults.py [--seeds 3] [--epochs 10]
"""

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from common import machine

from course_lib import digits, env, loader, models, train


def plain_loop(model, x, y, epochs: int, seed: int) -> None:
    """The loop a learner writes first: constant learning rate, a DataLoader over float tensors."""
    batch_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(loader.normalize(x), y), batch_size=64,
                                         shuffle=True, generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for _ in range(epochs):
        for xb, yb in batch_loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    print(machine())
    try:
        (x, y), test = digits.mnist("train"), digits.mnist("test")
        source = "MNIST"
    except RuntimeError:
        (x, y), test = digits.mnist_sample("train"), digits.mnist_sample("test")
        source = "the shipped MNIST sample (MNIST not downloadable here)"
    errors = {"fit defaults": [], "plain loop": []}
    seconds = {"fit defaults": 0.0, "plain loop": 0.0}
    for seed in range(args.seeds):
        env.seed_everything(seed)
        start_model = models.LeNet1()
        for name in errors:
            model = copy.deepcopy(start_model)
            t0 = time.perf_counter()
            if name == "fit defaults":
                train.fit(model, (x, y), epochs=args.epochs, seed=seed, progress=False, device="cpu")
            else:
                torch.manual_seed(seed)
                plain_loop(model, x, y, args.epochs, seed)
            seconds[name] += time.perf_counter() - t0
            errors[name].append(train.evaluate(model, test, device="cpu")["error"])
    print(f"fit_defaults: LeNet-1, {source}: {len(y):,} train / {len(test[1]):,} test, {args.epochs} epochs, "
          f"{args.seeds} seeds")
    for name, e in errors.items():
        print(f"  {name:12s} test error {100 * statistics.mean(e):.2f} % ± {100 * statistics.pstdev(e):.2f} "
              f"(seeds: {', '.join(f'{100 * v:.2f}' for v in e)}), {seconds[name]:.1f} s in all")
    better = statistics.mean(errors["fit defaults"]) <= statistics.mean(errors["plain loop"])
    print(f"  target (fit's mean error <= the plain loop's): {'met' if better else 'NOT met'}")


if __name__ == "__main__":
    main()

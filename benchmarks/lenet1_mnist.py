"""LeNet-1 on all of MNIST against the 1998 paper's table, and what thirty years of tricks bought.

Part 1: LeNet-1 as published (2,578 parameters) and its fully connected simplification (3,246), each
trained with `fit`'s defaults (SGD with Nesterov momentum, lr 0.1 with warm-up and cosine, batch 64) on
the 60,000 training digits and tested on the 10,000 test digits, over several seeds: test error mean ±
spread (std) and range, against LeCun et al. 1998's 1.7 % for LeNet-1. Part 2 (`--thirty-years`): LeNet-1
with one modern change at a time (`claims.THIRTY_YEARS_CHANGES`), the same seeds for every row, and the paired
change in test error. MNIST comes from the data folder (downloaded, or the four files placed by hand in
`data/MNIST/raw/`); without it the script says so and stops, unless `--sample` asks for the shipped
5,000 digits (whose figures are NOT comparable with the paper's).

Part 3 (`--recipe-steps`): how lesson 02's `cpu` recipe got to the paper's 1.7 % in 10 s: from the old
recipe (6 epochs, batch 64, lr 0.3, float32 in the usual NCHW memory), one change at a time, each kept
in the next row, the same seeds for every row: test error (mean ± std, worst seed), wall seconds of each
whole run (`fit` with the test set measured after each epoch, as the lesson runs it), and the paired change
against the row above. Run it on a quiet machine with 2 threads (`--threads 2`): its seconds are the figure.

    python benchmarks/lenet1_mnist.py [--seeds 3] [--epochs 10] [--thirty-years] [--sample] [--save FILE]
    python benchmarks/lenet1_mnist.py --recipe-steps --seeds 10 --threads 2
"""

import argparse
import datetime
import json
import os
import sys
import time

import numpy as np
import torch

from common import machine, sync

from course_lib import claims, digits, env, models, train
from course_lib.files import atomic_write


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.1, help="peak learning rate (fit's default 0.1; the profiles' "
                        "lesson-02 recipe is env.profile().lenet_lr)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--thirty-years", action="store_true", help="also LeNet-1 with one modern change at a time")
    parser.add_argument("--sample", action="store_true", help="use the shipped 5,000-digit sample (not comparable)")
    parser.add_argument("--recipe-steps", action="store_true", help="only the steps from the old cpu recipe to "
                        "the new one (part 3)")
    parser.add_argument("--save", default=None, help="write the figures as JSON (lesson 02 reads "
                        "course_lib/reference_nets/lenet1-mnist.results.json)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = env.device()
    print(machine())
    if args.sample:
        train_data, test_data = digits.mnist_sample("train"), digits.mnist_sample("test")
        dataset = "the shipped MNIST sample (NOT comparable with the paper's 1.7 %)"
    else:
        try:
            train_data, test_data = digits.mnist("train"), digits.mnist("test")
        except digits.MNISTUnavailable as err:
            print(f"MNIST is not here: {str(err).split('(')[0].strip()}. Place it, or run with --sample.")
            return 2
        dataset = "MNIST"
    print(f"lenet1_mnist: {dataset}, {len(train_data[1]):,} train / {len(test_data[1]):,} test digits, "
          f"{args.epochs} epochs, lr {args.lr}, batch {args.batch_size}, {args.seeds} seeds, device {device.type}, "
          f"{torch.get_num_threads()} torch threads\n")
    results = {"command": "python benchmarks/lenet1_mnist.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "machine": machine(), "date": datetime.date.today().isoformat(), "data": dataset,
               "train": len(train_data[1]), "test": len(test_data[1]), "epochs": args.epochs, "seeds": args.seeds,
               "lr": args.lr, "batch_size": args.batch_size, "load": os.getloadavg()[0],
               "threads": torch.get_num_threads(), "lenet": []}
    if args.recipe_steps:
        steps = {k: results[k] for k in ("command", "machine", "date", "data", "train", "test", "seeds", "threads")}
        steps["rows"] = recipe_steps(train_data, test_data, args.seeds)
        if args.save:    # added to the file's other figures (parts 1 and 2), which stay as they were
            saved = json.loads(open(args.save).read()) if os.path.exists(args.save) else {}
            saved["recipe_steps"] = steps
            atomic_write(args.save, lambda f: f.write(json.dumps(saved, indent=1) + "\n"), mode="w")
            print(f"\nadded the recipe steps to {args.save}")
        return 0
    rows = []
    if args.thirty_years:
        rows = claims.thirty_years(train_data, test_data, args.seeds, args.epochs, progress=sys.stderr.isatty())
        results["thirty_years"] = rows
    for variant in (models.LeNet1, models.LeNet1Simplified):
        if variant is models.LeNet1 and rows:     # the published network's runs are the table's first row
            errors, seconds, parameters = rows[0]["errors"], [rows[0]["seconds"]], rows[0]["parameters"]
        else:
            errors, seconds = [], []
            for seed in range(args.seeds):
                env.seed_everything(seed)
                model = variant()
                start = time.perf_counter()
                train.fit(model, train_data, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=seed,
                          progress=False, device=device)
                sync(device)
                seconds.append(time.perf_counter() - start)
                errors.append(train.evaluate(model, test_data)["error"])
            parameters = models.count_parameters(model)
        results["lenet"].append({"network": variant.__name__, "parameters": parameters, "errors": errors,
                                 "seconds": float(np.mean(seconds))})
    print("| network | parameters | test error (mean ± std) | range | seconds per run |")
    print("|---|---|---|---|---|")
    for r in results["lenet"]:
        e = 100 * np.array(r["errors"])
        print(f"| {r['network']} | {r['parameters']:,} | {e.mean():.2f} % ± {e.std():.2f} | "
              f"{e.min():.2f}–{e.max():.2f} % | {r['seconds']:.0f} |")
    e = 100 * np.array(results["lenet"][0]["errors"])
    print(f"\nLeCun et al. 1998 (Fig. 9): LeNet-1 1.7 % test error. Here: {e.mean():.2f} % ± {e.std():.2f} "
          f"({'reproduced: every seed at or below 1.7 %' if e.max() <= 1.7 else 'not every seed reaches 1.7 %'}).")
    if rows:
        print(f"\nWhat thirty years bought: one change at a time, {args.seeds} seeds each (the same seeds), "
              f"{args.epochs} epochs\n")
        print("| LeNet-1 with | parameters | test error (mean ± std) | change (paired, mean ± std) "
              "| beats the spread |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['change']} | {r['parameters']:,} | {100 * r['error']:.2f} % ± {100 * r['spread']:.2f} | "
                  f"{100 * r['diff']:+.2f} ± {100 * r['diff_spread']:.2f} | "
                  f"{'—' if r['change'] == 'LeNet-1 as published' else 'yes' if r['beats_spread'] else 'no'} |")
    if args.save:
        atomic_write(args.save, lambda f: f.write(json.dumps(results, indent=1) + "\n"), mode="w")
        print(f"\nsaved {args.save}")
    return 0


# From lesson 02's old `cpu` recipe to its new one (env.profile("cpu")): each row keeps the rows above.
RECIPE_STEPS = (
    ("old cpu recipe: 6 epochs, batch 64, lr 0.3, NCHW", dict(epochs=6, batch_size=64, lr=0.3, channels_last=False)),
    ("+ channels-last memory", dict(epochs=6, batch_size=64, lr=0.3, channels_last=True)),
    ("+ batch 128", dict(epochs=6, batch_size=128, lr=0.3, channels_last=True)),
    ("+ 4 epochs", dict(epochs=4, batch_size=128, lr=0.3, channels_last=True)),
    ("+ label smoothing 0.03", dict(epochs=4, batch_size=128, lr=0.3, channels_last=True, label_smoothing=0.03)),
)


def recipe_steps(train_data, test_data, seeds: int) -> list[dict]:
    """Part 3: every row of :data:`RECIPE_STEPS` over ``seeds`` seeds (the same for every row); prints the table
    and returns its rows (``change``, ``settings``, ``errors``, ``seconds``: one per seed)."""
    rows = []
    for change, settings in RECIPE_STEPS:
        errors, seconds = [], []
        for seed in range(seeds):
            env.seed_everything(seed)
            model = models.LeNet1()
            start = time.perf_counter()
            history = train.fit(model, train_data, test_data, seed=seed, progress=False, **settings)
            seconds.append(time.perf_counter() - start)
            errors.append(1 - history.last["val_accuracy"])
        rows.append({"change": change, "settings": settings, "errors": errors, "seconds": seconds,
                     "load": os.getloadavg()[0]})
        print(f"{change}: {100 * np.mean(errors):.2f} % (worst {100 * max(errors):.2f}), "
              f"{np.mean(seconds):.1f} s a run, load {rows[-1]['load']:.1f}", flush=True)
    print(f"\n| LeNet-1, {seeds} seeds | test error (mean ± std) | worst seed | seconds a run (mean, worst) "
          "| error change (paired) | speed (paired) |")
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(rows):
        e, t = 100 * np.array(r["errors"]), np.array(r["seconds"])
        if i:
            before_e, before_t = 100 * np.array(rows[i - 1]["errors"]), np.array(rows[i - 1]["seconds"])
            d = e - before_e
            paired = f"{d.mean():+.2f} ± {d.std():.2f}", f"{np.median(before_t / t):.2f}x"
        else:
            paired = "—", "—"
        print(f"| {r['change']} | {e.mean():.2f} % ± {e.std():.2f} | {e.max():.2f} % | {t.mean():.1f}, {t.max():.1f} "
              f"| {paired[0]} | {paired[1]} |")
    last = 100 * np.array(rows[-1]["errors"])
    print(f"\nLeCun et al. 1998: LeNet-1 1.7 %. The new recipe: {'every' if last.max() <= 1.7 else 'NOT every'} seed "
          f"at or below 1.70 % ({(last <= 1.7).sum()} of {len(last)}); worst run "
          f"{max(rows[-1]['seconds']):.1f} s on {torch.get_num_threads()} threads.")
    return rows


if __name__ == "__main__":
    sys.exit(main())

"""Lesson 09's tables: AlexNet with the decade's changes one at a time (top-1 over seeds, paired against
AlexNet, parameters, multiply-adds, seconds a run and images per second), one-cycle against warm-up and
cosine, and transfer from five Imagenette classes to the five others with few labels.

    python benchmarks/next_decade.py --profile cpu            # Imagenette from $COURSE_IMAGENETTE
    python benchmarks/next_decade.py --profile gpu --seeds 5

Uses the lesson's own functions (``course_lib.claims.next_decade``) at the profile's ``next_*`` sizes; in
``smoke`` it runs on the offline photos, which times the code and measures nothing about Imagenette.
"""

import argparse
import sys
import time

from common import machine

from course_lib import env
from course_lib.claims import decade_transfer as moving
from course_lib.claims import next_decade as decade


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu", choices=env.PROFILE_NAMES)
    parser.add_argument("--seeds", type=int, default=None, help="default: the profile's next_seeds")
    parser.add_argument("--skip-transfer", action="store_true")
    args = parser.parse_args(argv)
    prof = env.profile(args.profile)
    seeds = args.seeds or prof.next_seeds
    if seeds < 2:
        parser.error("--seeds must be at least 2: a spread needs two runs")
    progress = sys.stderr.isatty()
    start = time.perf_counter()
    full = decade.decade_data(prof)
    d = decade.table_data(full, prof)
    print(f"# Lesson 09's tables — profile {prof.name}, {seeds} seeds; {machine()}")
    print(f"# {d.describe()}; width {prof.next_width}, {prof.next_epochs} epochs, batch {prof.next_batch_size}, "
          f"rates tried {', '.join(map(str, prof.next_lrs))}; the rule fires on noise "
          f"{100 * decade.rule_on_noise(seeds):.1f} % of the time at {seeds} seeds")
    loaded = time.perf_counter()
    rates = decade.choose_rates(d, prof, progress=progress)
    tuned = time.perf_counter()
    rows = decade.next_decade(d, prof, seeds, rates, progress=progress)
    images = len(d.train_labels) * prof.next_epochs
    print(f"\nloading: {loaded - start:.0f} s; choosing the rates: {tuned - loaded:.0f} s; the table: "
          f"{time.perf_counter() - tuned:.0f} s")
    print("\n| AlexNet with | lr (top-1 held out at each) | parameters | multiply-adds | top-1 (mean ± std) | "
          "paired change | beats the spread | s a run | images/s | s to AlexNet's mean top-1 (seed 0's curve) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    target = rows[0]["mean"]      # as the lesson: AlexNet's final top-1, its mean over the seeds
    for r in rows:
        scores = rates[r["change"]]["scores"]
        reached = next((s for s, a in zip(r["curve"]["seconds"], r["curve"]["top1"]) if a >= target), None)
        print(f"| {r['change']} | {r['lr']:g} ({', '.join(f'{100 * v:.0f}' for v in scores.values())}) | "
              f"{r['parameters']:,} | {r['multiply_adds'] / 1e6:.1f} M | {100 * r['mean']:.1f} % ± "
              f"{100 * r['spread']:.1f} | {100 * r['diff']:+.1f} ± {100 * r['diff_spread']:.1f} | "
              f"{'—' if r['change'] == decade.BASELINE else 'yes' if r['beats_spread'] else 'no'} | "
              f"{r['seconds']:.0f} | {images / r['seconds']:,.0f} | "
              f"{'never' if reached is None else f'{reached:.0f}'} |")
    modern = next(r for r in rows if r["change"] == decade.ALL_TOGETHER)
    cycle = [decade.decade_run(decade.ALL_TOGETHER, d, prof, s, schedule="one-cycle", lr=modern["lr"])["accuracy"]
             for s in range(seeds)]
    pair = decade.paired_table({"cosine": modern["values"], "one-cycle": cycle}, "cosine", min_change=0.005)[1]
    print(f"\nall together, one-cycle against warm-up and cosine: {100 * pair['mean']:.1f} % vs "
          f"{100 * modern['mean']:.1f} %, paired {100 * pair['diff']:+.1f} ± {100 * pair['diff_spread']:.1f} "
          f"({'beats' if pair['beats_spread'] else 'within'} the spread)")
    if not args.skip_transfer:
        moved = moving.transfer(full, prof, seeds, modern["lr"], progress=progress)
        print(f"\ntransfer: pretrained on {', '.join(moved['classes'][0])} (top-1 "
              f"{100 * moved['pretrained_accuracy']:.1f} %, {moved['pretrain_seconds']:.0f} s), then "
              f"{', '.join(moved['classes'][1])}")
        print("\n| labels a class | linear probe | fine-tuning | from scratch |")
        print("|---|---|---|---|")
        for n, ways in moved["rows"].items():
            table = {r["change"]: r for r in decade.paired_table(ways, "scratch", min_change=0.01)}
            chosen = moved["chosen"][n]
            print(f"| {n} | " + " | ".join(
                f"{100 * table[w]['mean']:.1f} % ± {100 * table[w]['spread']:.1f} "
                f"({'C' if w == 'probe' else 'lr'} {chosen[w]['best']:g})" for w in moving.TRANSFER_WAYS) + " |")
    print(f"\n# {time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())

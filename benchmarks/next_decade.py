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
from course_lib.claims import next_decade as decade


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu", choices=env.PROFILE_NAMES)
    parser.add_argument("--seeds", type=int, default=None, help="default: the profile's")
    parser.add_argument("--skip-transfer", action="store_true")
    args = parser.parse_args(argv)
    prof = env.profile(args.profile)
    seeds = args.seeds or prof.seeds
    if seeds < 2:
        parser.error("--seeds must be at least 2: a spread needs two runs")
    progress = sys.stderr.isatty()
    start = time.perf_counter()
    d = decade.decade_data(prof)
    print(f"# Lesson 09's tables — profile {prof.name}, {seeds} seeds; {machine()}")
    print(f"# {d.describe()}; width {prof.next_width}, {prof.next_epochs} epochs, batch {prof.next_batch_size}, "
          f"lr {prof.next_lr}")
    rows = decade.next_decade(d, prof, seeds, progress=progress)
    images = len(d.train_labels) * prof.next_epochs
    print("\n| AlexNet with | parameters | multiply-adds | top-1 (mean ± std) | paired change | beats the spread | "
          "s a run | images/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['change']} | {r['parameters']:,} | {r['multiply_adds'] / 1e6:.1f} M | {100 * r['mean']:.1f} % ± "
              f"{100 * r['spread']:.1f} | {100 * r['diff']:+.1f} ± {100 * r['diff_spread']:.1f} | "
              f"{'—' if r['change'] == decade.BASELINE else 'yes' if r['beats_spread'] else 'no'} | "
              f"{r['seconds']:.0f} | {images / r['seconds']:,.0f} |")
    modern = next(r for r in rows if r["change"] == decade.ALL_TOGETHER)
    cycle = [decade.decade_run(decade.ALL_TOGETHER, d, prof, s, schedule="one-cycle")["accuracy"] for s in range(seeds)]
    pair = decade.paired_table({"cosine": modern["values"], "one-cycle": cycle}, "cosine", min_change=0.005)[1]
    print(f"\nall together, one-cycle against warm-up and cosine: {100 * pair['mean']:.1f} % vs "
          f"{100 * modern['mean']:.1f} %, paired {100 * pair['diff']:+.1f} ± {100 * pair['diff_spread']:.1f} "
          f"({'beats' if pair['beats_spread'] else 'within'} the spread)")
    if not args.skip_transfer:
        moved = decade.transfer(d, prof, seeds, progress=progress)
        print(f"\ntransfer: pretrained on {', '.join(moved['classes'][0])} (top-1 "
              f"{100 * moved['pretrained_accuracy']:.1f} %), then {', '.join(moved['classes'][1])}")
        print("\n| labels a class | linear probe | fine-tuning | from scratch |")
        print("|---|---|---|---|")
        for n, ways in moved["rows"].items():
            table = {r["change"]: r for r in decade.paired_table(ways, "scratch", min_change=0.01)}
            print(f"| {n} | " + " | ".join(f"{100 * table[w]['mean']:.1f} % ± {100 * table[w]['spread']:.1f}"
                                           for w in ("probe", "fine-tune", "scratch")) + " |")
    print(f"\n# {time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())

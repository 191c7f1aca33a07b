"""The claims report: every claim the course makes, measured over several seeds next to its control.

    python benchmarks/seed_claims.py --profile cpu --seeds 5
    python benchmarks/seed_claims.py --profile gpu --seeds 3 --only alexnet [--alexnet-epochs 10]
    python benchmarks/seed_claims.py --profile cpu --seeds 3 --only decade
    python benchmarks/seed_claims.py --only references --save course_lib/reference_nets/alexnet-imagenette.results.json

Prints one table: claim, measured value (mean ± std over seeds), control value, in how many seeds the
measured value beat the control, the verdict of the lesson's rule (``course_lib.claims``) and whether
the lesson asserts the claim. The digit claims (lessons 03 and 06) and lesson 08's (the reference AlexNet's
units, fooling LeNet-1) run on any machine. The AlexNet claims
(lesson 05) train a two-stream AlexNet and its single-stream control per seed with the profile's recipe
(resuming finished runs from the data folder); in ``smoke`` they run on the offline photos, which cannot
test them, and say so. Lesson 09's claims (``--only decade``: the decade's changes one at a time, overfitting
one batch, transfer) train AlexNet variants on Imagenette at the profile's ``next_*`` sizes. ``--only references``
measures lesson 05's claims on the shipped reference AlexNets (the one seed built) instead of training; with
``--save`` it keeps the saved file's earlier multi-seed AlexNet report under ``"earlier"``. Exits with status 1
when a claim that a lesson asserts was not reproduced.
"""

import argparse
import dataclasses
import datetime
import json
import sys
import time

from common import machine

from course_lib import claims, env
from course_lib.files import atomic_write


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu", choices=env.PROFILE_NAMES)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", choices=("all", "digits", "alexnet", "units", "decade", "references"), default="all")
    parser.add_argument("--alexnet-epochs", type=int, default=None, help="override the profile's AlexNet epochs")
    parser.add_argument("--save", default=None, help="also write the rows as JSON (lesson 05 reads "
                        "course_lib/reference_nets/alexnet-imagenette.results.json)")
    args = parser.parse_args(argv)
    if args.only == "references":
        args.seeds = 1      # the references are one pair, built once
    elif args.seeds < 2:
        parser.error("--seeds must be at least 2: a spread needs two runs")
    prof = env.profile("gpu" if args.only == "references" else args.profile)   # the references' data: all, 128 px
    progress = sys.stderr.isatty()
    start = time.perf_counter()
    rows = []
    if args.only in ("all", "digits"):
        rows += claims.digit_claims(prof, args.seeds, progress=progress)
        rows += claims.decision_claims(prof, args.seeds, progress=progress)
    if args.only in ("all", "units"):
        rows += claims.unit_claims(prof, args.seeds, progress=progress)
    if args.only in ("all", "alexnet"):
        if args.alexnet_epochs:
            prof = dataclasses.replace(prof, alexnet_epochs=args.alexnet_epochs)
        rows += claims.alexnet_claims(prof, args.seeds, progress=progress)
    if args.only == "references":
        rows += claims.reference_claims(progress=progress)
    if args.only in ("all", "decade"):
        from course_lib.claims import decade_transfer
        rows += decade_transfer.decade_claims(prof, args.seeds, progress=progress)
    seconds = time.perf_counter() - start

    print(f"# Claims report — profile {prof.name}, {args.seeds} seeds" +
          (f", data {prof.dataset}" if args.only in ("all", "digits") else ""))
    print(f"# {machine()}; {seconds:.0f} s")
    for data in dict.fromkeys(r["data"] for r in rows):
        print(f"# data: {data}")
    print()
    print("| claim | measured (mean ± std) | control | beat the control | verdict | lesson asserts it |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['claim']} | {r['measured']:.3f} ± {r['measured_spread']:.3f} | {r['control']:.3f} "
              f"({r['control_name']}) | {r['k']} of {r['n']} | "
              f"{'reproduced' if r['reproduced'] else 'not reproduced'} | {'yes' if r['asserted'] else 'no'} |")
    if args.save:
        given = argv if argv is not None else sys.argv[1:]
        results = {"command": "python benchmarks/seed_claims.py " + " ".join(given),
                   "machine": machine(), "date": datetime.date.today().isoformat(), "profile": prof.name,
                   "seeds": args.seeds, "alexnet_epochs": prof.alexnet_epochs, "image_size": prof.image_size,
                   "seconds": round(seconds), "rows": rows}
        if args.only == "references":
            import pathlib
            from course_lib import references
            record = references.load_network("alexnet-imagenette")[1]
            results.update(alexnet_epochs=record["settings"]["epochs"], image_size=record["settings"]["image_size"],
                           networks="the shipped reference pair (seed 0), each claim against its control")
            old = pathlib.Path(args.save)
            saved = json.loads(old.read_text()) if old.exists() else {}
            # a file of trained seeds becomes "earlier"; a file of the references keeps its own "earlier"
            earlier = saved.get("earlier") if saved.get("networks") else (saved or None)
            if earlier is not None:
                results["earlier"] = earlier
        atomic_write(args.save, lambda f: f.write(json.dumps(results, indent=1) + "\n"), mode="w")
        print(f"\nsaved {args.save}")
    broken = [r["claim"] for r in rows if r["asserted"] and not r["reproduced"]]
    if broken:
        print(f"\nASSERTED BUT NOT REPRODUCED in this run: {broken}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

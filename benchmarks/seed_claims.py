"""The claims report: every claim the course makes, measured over several seeds next to its control.

    python benchmarks/seed_claims.py --profile cpu --seeds 5

Prints one table: claim, measured value (mean ± std over seeds), control value, in how many seeds the
measured value beat the control, the verdict of the lesson's rule (``course_lib.claims``) and whether
the lesson asserts the claim. The digit claims (lessons 03 and 06) run on any machine; the AlexNet claims
(lesson 05) need a GPU and Imagenette, and the report says when they were not run.
"""

import argparse
import sys
import time

from common import machine

from course_lib import claims, env, imagenette


def alexnet_claims_status() -> str:
    """Why the AlexNet claims can or cannot run here."""
    import torch

    if not torch.cuda.is_available():
        return "not run: no GPU here (lesson 05's claims need AlexNet trained on Imagenette, `gpu` profile)"
    try:
        imagenette.load("train", size=160, download=False)
    except Exception:
        return "not run: Imagenette is not in the data folder and could not be downloaded"
    return "run lesson 05 in the gpu profile (COURSE_PROFILE=gpu) for these claims"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu", choices=env.PROFILE_NAMES)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error("--seeds must be at least 2: a spread needs two runs")
    prof = env.profile(args.profile)
    start = time.perf_counter()
    rows = claims.digit_claims(prof, args.seeds, progress=sys.stderr.isatty())
    rows += claims.decision_claims(prof, args.seeds, progress=sys.stderr.isatty())
    seconds = time.perf_counter() - start

    print(f"# Claims report — profile {prof.name}, {args.seeds} seeds, data {prof.dataset}: {rows[0]['data']}")
    print(f"# {machine()}; {seconds:.0f} s")
    print()
    print("| claim | measured (mean ± std) | control | beat the control | verdict | lesson asserts it |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['claim']} | {r['measured']:.3f} ± {r['measured_spread']:.3f} | {r['control']:.3f} "
              f"({r['control_name']}) | {r['k']} of {r['n']} | "
              f"{'reproduced' if r['reproduced'] else 'not reproduced'} | {'yes' if r['asserted'] else 'no'} |")
    print(f"| AlexNet: conv1 streams split color/grayscale; conv5 sparser than conv1 | — | — | — | "
          f"{alexnet_claims_status()} | — |")
    broken = [r["claim"] for r in rows if r["asserted"] and not r["reproduced"]]
    if broken:
        print(f"\nASSERTED BUT NOT REPRODUCED in this run: {broken}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where `make test`'s time goes: per file and per kind of test, from a JUnit XML report.

    make test PYTEST_ARGS="--junitxml=build/junit.xml --durations=40"
    python benchmarks/suite_time.py build/junit.xml

Prints the summed test time per kind (lessons under nbval, exercise checks, browser, distributed, Colab
simulation, site, claims, unit tests) and the 15 slowest files. The sums are of each test's own time:
with several workers (pytest-xdist) they add up to more than the wall time, which pytest prints itself.
"""

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

KINDS = (("solutions/", "lessons under nbval"), ("test_exercises", "exercise checks (wrong answers)"),
         ("test_student_notebooks", "student notebooks (up to the first exercise)"),
         ("test_course_site", "course site (build + browser)"), ("browser", "browser (JupyterLab)"),
         ("test_distributed", "distributed (torchrun)"), ("test_colab", "Colab simulation"),
         ("test_claims", "claims"), ("", "unit tests"))


def kind(path: str) -> str:
    return next(name for key, name in KINDS if key in path)


def main(path: str) -> int:
    files, kinds, count = defaultdict(float), defaultdict(float), 0
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("classname", "").replace(".", "/")
        seconds = float(case.get("time", 0))
        where = name if name.startswith("solutions") else name.rsplit("/", 1)[0] if "/" in name else name
        files[where] += seconds
        kinds[kind(where)] += seconds
        count += 1
    print(f"{count} tests, {sum(files.values()):.0f} s of test time in all\n")
    print("| kind | seconds |\n|---|---|")
    for name, seconds in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {seconds:.0f} |")
    print("\n| file | seconds |\n|---|---|")
    for name, seconds in sorted(files.items(), key=lambda kv: -kv[1])[:15]:
        print(f"| {name} | {seconds:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

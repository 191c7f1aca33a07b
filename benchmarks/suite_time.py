"""Where `make test`'s time goes: per file and per kind of test, from a JUnit XML report.

    make test PYTEST_ARGS="--junitxml=build/junit.xml --durations=40"
    python benchmarks/suite_time.py build/junit.xml

Prints the summed test time per kind (lessons under nbval with their wrong answers, browser, distributed, Colab
simulation, site, claims, unit tests) and the 15 slowest files. The sums are of each test's own time:
with several workers (pytest-xdist) they add up to more than the wall time, which pytest prints itself.
"""

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

# The exercises' wrong answers are tried inside nbval's run of each solution (tests/exercise_misses.py): their time
# is the lessons'; test_exercises.py keeps the table's own checks and the test that the hook is on.
KINDS = (("solutions/", "lessons under nbval (with the exercises' wrong answers)"),
         ("test_exercises", "exercise table and its hook"),
         ("test_student_notebooks", "student notebooks (up to the first exercise)"),
         ("test_course_site", "course site (build + browser)"), ("browser", "browser (JupyterLab)"),
         ("test_distributed", "distributed (torchrun)"), ("test_colab", "Colab simulation"),
         ("test_claims", "claims"), ("", "unit tests"))


def kind(path: str) -> str:
    return next(name for key, name in KINDS if key in path)


def test_file(classname: str) -> str:
    """The file a JUnit ``classname`` names: ``tests.browser.test_x`` (or ``tests.test_x.TestCase``) is
    ``tests/browser/test_x.py``; nbval's ``solutions.04_lesson.ipynb`` is ``solutions/04_lesson.ipynb``."""
    if classname.endswith(".ipynb"):
        folder, _, name = classname[:-len(".ipynb")].partition(".")
        return f"{folder}/{name}.ipynb"
    parts = classname.split(".")
    while len(parts) > 1 and parts[-1][:1].isupper():
        parts.pop()
    return "/".join(parts) + ".py"


def main(path: str) -> int:
    files, kinds, count = defaultdict(float), defaultdict(float), 0
    for case in ET.parse(path).getroot().iter("testcase"):
        seconds = float(case.get("time", 0))
        where = test_file(case.get("classname", ""))
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

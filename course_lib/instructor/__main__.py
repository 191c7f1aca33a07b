"""``python -m course_lib.instructor COMMAND ...``: the instructor's commands (the Makefile's targets call them).

    student                      write student/ from notebooks/
    solutions [--profile P] [--all] [LESSON ...]
                                 execute notebooks/ into solutions/ (default: the cpu profile, real data)
    check                        fail when a generated notebook is stale or a source malformed
    grade DIR [--timeout S]      grade a folder of learners' notebooks into DIR/grades.csv
    site build | render          the course website
    release vX.Y.Z [--repo R]    move every badge and install line to a new release
    lock                         write environment.yml from requirements.lock
    new NN_name "Title"          the skeleton of a new lesson (CONTRIBUTING.md, "Adding a lesson")
    references list | build ...  the trained reference networks
"""

from __future__ import annotations

import argparse
import sys

COMMANDS = {
    "student": "notebooks", "solutions": "notebooks", "check": "notebooks", "grade": "grade",
    "site": "site", "release": "release", "lock": "lock", "references": "build_references",
    "new": "new_lesson",
}


def main(argv: list[str] | None = None) -> int:
    """Run one instructor command; its exit status (2 and this help for an unknown one)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command in ("student", "solutions", "check"):
        return notebooks_main(argv)
    module = __import__(f"course_lib.instructor.{COMMANDS[command]}", fromlist=["main"])
    return module.main(rest)


def notebooks_main(argv: list[str]) -> int:
    """``student``, ``solutions`` and ``check``: 0 when done, 1 with the problems named (one per line)."""
    from .check import check
    from .course import ROOT, NotebookError, lessons
    from .notebooks import student
    from .solutions import solutions

    parser = argparse.ArgumentParser(prog="python -m course_lib.instructor", description="The lesson notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("student", help="write student/ from notebooks/")
    p_sol = sub.add_parser("solutions", help="execute notebooks/ into solutions/")
    p_sol.add_argument("--profile", default="cpu", choices=("smoke", "cpu", "gpu"))
    p_sol.add_argument("lessons", nargs="*", help="only these lessons (e.g. 02_lenet1_digits)")
    p_sol.add_argument("--all", action="store_true", help="run lessons whose source and library did not change too")
    sub.add_parser("check", help="fail when generated notebooks are stale or sources malformed")
    args = parser.parse_args(argv)
    try:
        if args.command == "student":
            for p in student():
                print(f"wrote {p.relative_to(ROOT)}")
        elif args.command == "solutions":
            for p in solutions(profile=args.profile, only=args.lessons, force=args.all):
                print(f"wrote {p.relative_to(ROOT)}")
        else:
            problems = check()
            for msg in problems:
                print(f"check: {msg}", file=sys.stderr)
            if problems:
                return 1
            print(f"check: {len(lessons(ROOT / 'notebooks'))} lessons, student and solution notebooks up to date")
    except (NotebookError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``check``: every problem with the lesson sources and the notebooks made from them — malformed sources,
stale student or solution notebooks, solutions that are not a real run, numbers in the words that the
lesson does not print, a README without the lessons' badges, a lock out of date."""

from __future__ import annotations

import json
from pathlib import Path

from .course import ROOT, NotebookError, lessons, read_notebook, root_of
from .lock import lock_problems
from .notebooks import HINTS, dumps, hints_text, make_student, validate
from .release import badge, release_info
from .solutions import LIBRARY, fingerprint
from .words import unsupported_numbers

# The profiles a published solution may have run in: a real run, never the smoke test's.
PUBLISHED_PROFILES = ("cpu", "gpu")


def _code_sources(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def check(src: Path = ROOT / "notebooks", student_dir: Path = ROOT / "student",
          solutions_dir: Path = ROOT / "solutions", library: Path = LIBRARY,
          published: bool | None = None) -> list[str]:
    """Every problem with the sources and the generated notebooks, as messages (empty = all good).

    A solution is stale when its code differs from the source's, or when it was made from other source
    bytes or another ``library`` (:func:`solutions.fingerprint`, as ``make solutions`` records it): a library
    edit can change a lesson's outputs without changing its code. ``published`` (default: when checking
    this course's own ``solutions/``): every solution must also be a real run, made in one of
    :data:`PUBLISHED_PROFILES`."""
    problems = []
    published = Path(solutions_dir).resolve() == (ROOT / "solutions").resolve() if published is None else published
    paths = lessons(src)
    if not paths:
        return [f"No lesson sources (NN_name.ipynb) in {src}."]
    for folder in (Path(student_dir), Path(solutions_dir)):
        for orphan in sorted(set(p.name for p in lessons(folder)) - set(p.name for p in paths)):
            problems.append(f"{folder / orphan} has no source {Path(src) / orphan}: delete it, or restore its source.")
    for path in paths:
        try:
            nb = read_notebook(path)
            problems += validate(nb, path.name, root_of(src))
            expected = dumps(make_student(nb, path.name, root_of(src)))
        except NotebookError as err:
            problems.append(str(err))
            continue
        stud = Path(student_dir) / path.name
        if not stud.exists():
            problems.append(f"{stud} is missing: run `make student`.")
        elif stud.read_text(encoding="utf-8") != expected:
            problems.append(f"{stud} is out of date with {path}: run `make student`.")
        sol = Path(solutions_dir) / path.name
        if not sol.exists():
            problems.append(f"{sol} is missing: run `make solutions`.")
        else:
            try:
                solved = read_notebook(sol)
                made = solved.metadata.get("course", {})
                now = fingerprint(path, library, made.get("reads"))
                if _code_sources(solved) != _code_sources(nb) or made.get("source") != now["source"]:
                    problems.append(f"{sol} was made from an older {path}: run `make solutions`.")
                elif made.get("library") != now["library"]:
                    problems.append(f"{sol} was made with another version of course_lib ({Path(library).name}/ "
                                    "changed since): run `make solutions`.")
                elif published and made.get("profile") not in PUBLISHED_PROFILES:
                    problems.append(f"{sol} ran in the {made.get('profile')!r} profile: the published solutions are a "
                                    f"real run ({' or '.join(PUBLISHED_PROFILES)}, on real data): "
                                    "run `make solutions`.")
            except NotebookError as err:
                problems.append(f"{err} Run `make solutions`.")
            else:
                for cell, number in unsupported_numbers(solved):
                    problems.append(f"{sol}, cell {cell}: the words say {number}, which the lesson neither prints nor "
                                    "states in its code, and which is not a sourced fact (words.SOURCED_NUMBERS): "
                                    "print it from the run, or source it.")
    if Path(src).resolve() == (ROOT / "notebooks").resolve():
        if not HINTS.exists() or HINTS.read_text(encoding="utf-8") != hints_text(src):
            problems.append(f"{HINTS} is out of date with the check cells' hints in {src}: run `make student`.")
        for stud in lessons(student_dir):
            text = stud.read_text(encoding="utf-8")
            for lesson_hints in json.loads(hints_text(src)).values():
                for exercise, hint in lesson_hints.items():
                    if hint in text:
                        problems.append(f"{stud} shows the hint of {exercise!r} before the learner has tried.")
    readme = root_of(src) / "README.md"
    if readme.exists() and root_of(src) == Path(src).resolve().parent:   # the lesson table of this tree
        text = readme.read_text(encoding="utf-8")
        for path in paths:
            for folder in ("student", "solutions"):
                if badge(path.name, folder, root_of(src)) not in text:
                    problems.append(f"{readme.name} lacks the Colab badge of {folder}/{path.name} at this release "
                                    f"({release_info(root_of(src))[1]}): add it to the lesson table.")
        problems += lock_problems(root_of(src))
    return problems



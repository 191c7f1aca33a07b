"""Grading a folder of learners' notebooks: ``make grade SUBMISSIONS=DIR`` writes ``DIR/grades.csv``.

What it promises, against a learner who attacks it (work from strangers): the grade is decided in the
grader's process, where no learner code runs. Each notebook's code cells (its check cells left out) run in
a process of their own, in the sandbox of :mod:`.sandbox` (bubblewrap: no capabilities, its own work folder
the only thing it sees writable, nothing of other submissions, solutions or homes, no network, limits on
memory, processes, file size, output and time). Then the course's own check cells run here, in the grader:
the names they read come from the lesson's own imports (``F`` is ``torch.nn.functional`` whatever the
learner bound) or, as data only, from the notebook's process; a call of a learner's function is made in the
notebook's process, under ``own_work``'s watch, and its result comes back as numbers and arrays, never as
code or a pickle. A learner's value that is not data (a class, its instance, a generator) stays there: the check
gets a handle (:mod:`.remote`) whose calls, attributes and items are asked for there; a module made only of
torch's and the course's classes comes as data and is remade here from the library's own class; what a call
changes in place in the check's arguments (a model's weights, a dict) comes back as data and is written in.
No token exists: nothing the notebook prints counts. Every file gets one row, also when its
process dies, hangs, hits a limit or is not a notebook (the note says which). Where bubblewrap cannot run,
the grader refuses unless told ``--no-sandbox`` (trusted work only), and every row then says so.

    python -m course_lib.instructor grade DIR [--timeout SECONDS] [--cell-timeout SECONDS] [--no-sandbox]
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from .. import exercises
from . import answers, sandbox
from .course import ROOT, lessons, read_notebook, NotebookError
from .notebooks import checked_exercise, is_check

COLUMNS = ["file", "lesson", "passed", "total", "missed", "note"]
START = re.compile(r"""exercises\.start\(\s*["']([0-9]{2}_\w+)["']""")


class NoSandbox(RuntimeError):
    """The machine cannot sandbox and the instructor did not pass ``--no-sandbox``."""


def exercise_checks(src: Path = ROOT / "notebooks") -> dict[str, dict[str, str]]:
    """``{lesson: {exercise: the source of its check cell}}`` for every lesson source in ``src``, in order."""
    out = {}
    for path in lessons(src):
        checks = {}
        for cell in read_notebook(path).cells:
            name = checked_exercise(cell) if is_check(cell) else None
            if name:
                checks[name] = cell.source
        out[path.stem] = checks
    return out


def which_lesson(nb, file: Path, known) -> str | None:
    """The lesson a learner's notebook is: the one its ``exercises.start(...)`` names, else the one its file
    name contains, else None."""
    for cell in nb.cells:
        found = START.search(cell.source) if cell.cell_type == "code" else None
        if found and found.group(1) in known:
            return found.group(1)
    return next((lesson for lesson in known if lesson in file.name), None)




def cells_to_run(nb) -> list[str]:
    """The learner's code cells, in order, without check cells (the course's own checks run in the grader)."""
    nb = nbformat.v4.upgrade(nb) if nb.nbformat < 4 else nb
    return [cell.source for cell in nb.cells
            if cell.cell_type == "code" and not (is_check(cell) or checked_exercise(cell))]


def course_namespace(src: Path, lesson: str) -> dict:
    """What the lesson source's own import statements bind (``F``, ``torch``, ``exercises``, ...), made in
    the grader: a check cell sees these, never a learner's rebinding of them."""
    namespace: dict = {"__name__": "__course_check__"}
    for cell in read_notebook(src / f"{lesson}.ipynb").cells:
        if cell.cell_type != "code" or is_check(cell):
            continue
        try:
            tree = ast.parse("\n".join("pass" if ln.lstrip().startswith(("%", "!")) else ln
                                       for ln in cell.source.splitlines()))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                with contextlib.suppress(Exception):
                    exec(compile(ast.Module([node], []), "<course imports>", "exec"), namespace)
    return namespace


def free_names(source: str) -> list[str]:
    """The names a check cell reads that it does not bind itself."""
    tree = ast.parse(source)
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    bound |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    bound |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    read = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    return list(dict.fromkeys(n for n in read if n not in bound and not hasattr(builtins, n)))


def run_checks(lesson: str, checks: dict[str, str], course: dict, client: answers.Client) -> dict[str, str]:
    """``{exercise: "PASS" or "MISS"}``: the course's check cells run here, in the grader, on the learner's
    values and functions (their calls made in the notebook's process, their results compared here)."""
    exercises.start(lesson, total=len(checks))
    verdicts = {}
    for name, source in checks.items():
        namespace = dict(course)
        try:
            for free in free_names(source):
                if free not in namespace:
                    value = client.get(free)
                    if value is not answers.Missing:
                        namespace[free] = value
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(compile(source, f"<check {name}>", "exec"), namespace)
        except Exception:   # noqa: BLE001 — a miss, a name the notebook lacks, a process that stopped
            pass
        verdicts[name] = "PASS" if name in exercises.passed() else "MISS"
    return verdicts


def _stopped(proc, work: Path) -> str:
    """Why the notebook's process ended, in words for the row."""
    code, log = proc.returncode, work / "output.txt"
    tail = "".join(p.read_bytes()[-4000:].decode(errors="replace") for p in (log, work / "sandbox.txt") if p.exists())
    if code == -signal.SIGXCPU:
        return "stopped at the CPU-time limit"
    if code == -signal.SIGXFSZ or (log.exists() and log.stat().st_size >= sandbox.FILE_SIZE):
        return f"stopped at the file-size limit ({sandbox.FILE_SIZE >> 20} MiB, output included)"
    if "MemoryError" in tail or "Cannot allocate memory" in tail:
        return f"stopped at the memory limit ({sandbox.MEMORY >> 30} GiB)"
    if "Resource temporarily unavailable" in tail or "BlockingIOError" in tail:
        return f"stopped at the process limit ({sandbox.PROCESSES})"
    return f"the kernel died (exit status {code})"


def _run(cells: list[str], work: Path, lesson: str, checks: dict, course: dict, cell_timeout: int, timeout: int,
         *, sandboxed: bool) -> tuple[dict, str]:
    """Run the learner's ``cells`` in a process of its own (sandboxed when ``sandboxed``), then the checks here."""
    import time

    for folder in ("home", "data", "tmp", "ipython", "matplotlib"):
        (work / folder).mkdir(exist_ok=True)
    (work / "cells.json").write_text(json.dumps(cells))
    package = Path(exercises.__file__).resolve().parent
    argv = [sys.executable, "-m", "course_lib.instructor.answers", str(work / "cells.json"), str(cell_timeout)]
    if sandboxed:
        argv = sandbox.command(work, argv, package, tuple(p for p in [ROOT / "data"] if p.is_dir()))
    start = time.monotonic()
    with open(work / "sandbox.txt", "wb") as log:      # what bwrap, or Python before the cells, says
        proc = subprocess.Popen(argv, cwd=work, env=sandbox.environment(work, package.parent), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                                preexec_fn=sandbox.limits(cpu=timeout + 30))
    client = answers.Client(proc.stdin.fileno(), proc.stdout.fileno(), timeout=cell_timeout + 10)
    verdicts, note = {}, ""
    try:
        ready = answers.receive(proc.stdout.fileno(), timeout)
        if ready.get("interrupted"):
            note = f"{ready['interrupted']} cell(s) interrupted after {cell_timeout} s"
        client.timeout = max(1.0, min(cell_timeout + 10, timeout - (time.monotonic() - start)))
        verdicts = run_checks(lesson, checks, course, client)
    except TimeoutError:
        note = f"stopped after {timeout} s"
    except (EOFError, OSError, ValueError):
        pass
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)     # bwrap, and with it everything the notebook started
        except ProcessLookupError:
            pass
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    if client.gone and not note:
        note = client.gone
    if not verdicts and not note:
        note = _stopped(proc, work)
    log = work / "output.txt"
    if log.exists() and log.stat().st_size >= sandbox.FILE_SIZE and "file-size" not in note:
        note = "; ".join(filter(None, [note, f"output cut at the file-size limit ({sandbox.FILE_SIZE >> 20} MiB)"]))
    return verdicts, note


def grade_one(path: Path, checks: dict, cell_timeout: int = 120, timeout: int = 600, *,
              src: Path = ROOT / "notebooks", sandboxed: bool = True) -> dict:
    """One row of ``grades.csv`` for the notebook at ``path``: ``{"file", "lesson", "passed", "total",
    "missed", "note"}``, from a run in a temporary folder of its own."""
    row = {"file": path.name, "lesson": "", "passed": 0, "total": "", "missed": "", "note": ""}
    try:
        nb = nbformat.read(path, 4)
        cells = cells_to_run(nb)
    except Exception as err:   # noqa: BLE001 — whatever a file that is not a notebook raises
        row["note"] = f"not a notebook ({type(err).__name__})"
        return row
    lesson = which_lesson(nb, path, checks)
    if lesson is None:
        row["note"] = "no lesson of this course (no exercises.start(...) and no lesson name in the file name)"
        return row
    names = list(checks[lesson])
    row.update(lesson=lesson, total=len(names))
    with tempfile.TemporaryDirectory(prefix="grade-") as scratch:
        verdicts, note = _run(cells, Path(scratch), lesson, checks[lesson], _course(src, lesson), cell_timeout,
                              timeout, sandboxed=sandboxed)
    passed = [n for n in names if verdicts.get(n) == "PASS"]
    row.update(passed=len(passed), missed=" ".join(n for n in names if n not in passed))
    notes = [note] if note else []
    if not sandboxed:
        notes.append("run WITHOUT a sandbox (--no-sandbox): the notebook could reach what the grader can")
    row["note"] = "; ".join(notes)
    return row


_courses: dict = {}


def _course(src: Path, lesson: str) -> dict:
    if (src, lesson) not in _courses:
        _courses[src, lesson] = course_namespace(src, lesson)
    return _courses[src, lesson]


def grade(folder: str | os.PathLike, cell_timeout: int = 120, timeout: int = 600,
          src: Path = ROOT / "notebooks", *, sandboxed: bool = True) -> Path:
    """Grade every file in ``folder`` (but ``grades.csv`` and hidden files) and write ``folder/grades.csv``
    (atomically), one row per file, sorted by name. Returns its path. Raises ``NotADirectoryError`` for a
    folder that is not one, :class:`NoSandbox` when ``sandboxed`` and bubblewrap cannot run here."""
    from ..files import atomic_write

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder of notebooks to grade.")
    if sandboxed and not sandbox.available():
        raise NoSandbox("bubblewrap (bwrap) cannot sandbox a notebook on this machine: install it (apt-get install "
                        "bubblewrap) and allow user namespaces, or pass --no-sandbox for work you trust.")
    checks = exercise_checks(src)
    rows = [grade_one(p, checks, cell_timeout, timeout, src=src, sandboxed=sandboxed) for p in sorted(folder.iterdir())
            if p.is_file() and p.name != "grades.csv" and not p.name.startswith(".")]

    def write(f):
        out = csv.DictWriter(f, fieldnames=COLUMNS)
        out.writeheader()
        out.writerows(rows)

    target = folder / "grades.csv"
    atomic_write(target, write, mode="w")
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.instructor grade", description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="the folder of notebooks to grade (grades.csv is written there)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a notebook may run (default 600)")
    parser.add_argument("--cell-timeout", type=int, default=120, help="seconds a cell may run (default 120)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run the notebooks as this user, unconfined (only for work you trust; rows say so)")
    args = parser.parse_args(argv)
    try:
        path = grade(args.folder, args.cell_timeout, args.timeout, sandboxed=not args.no_sandbox)
    except (NotADirectoryError, NotebookError, NoSandbox) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        print(f"{r['file']}: {r['lesson'] or '?'} {r['passed']} of {r['total'] or '?'}"
              + (f" (missed {r['missed']})" if r["missed"] else "") + (f" — {r['note']}" if r["note"] else ""))
    print(f"wrote {path}")
    return 0


"""Grading a folder of learners' notebooks: ``make grade SUBMISSIONS=DIR`` writes ``DIR/grades.csv``.

Each notebook (any file name; from any release, with extra cells, or failing half way) is run top to bottom
in a fresh kernel, in a temporary copy of its own — its working folder, home and data folder are temporary
too — with a time limit per cell and per notebook, in the ``smoke`` profile. What nbgrader does well is kept:
the check cells are the course's own, not the learner's (each check cell the learner has is replaced by the
current lesson source's check of the same exercise, so an edited check cannot pass itself), and a failing
cell does not stop the next. Like otter-grader, the result is one CSV row per notebook. A notebook that hangs
is interrupted, one that kills its kernel or is not a notebook at all gets a row saying so; none stops the
others. Where the grader may make Linux namespaces (root, with util-linux's ``unshare``: a container, a CI
machine, a grading server) each notebook runs in a sandbox of its own: every file of the machine read-only
but its temporary folder, an empty ``/dev/shm``, no network, its own process tree. Elsewhere (an
ordinary user on a laptop) the notebook runs as that user, and could reach by an absolute path what the user
may reach; ``grades.csv`` then says so in each row's note. For work from strangers, grade as root in a
container (otter-grader runs each notebook in Docker for the same reason).

    python -m course_lib.instructor grade DIR [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from ..exercises import GRADING
from .course import ROOT, lessons, read_notebook, NotebookError
from .notebooks import checked_exercise, is_check

COLUMNS = ["file", "lesson", "passed", "total", "missed", "note"]
MARK = r"^\[grade {token}\] (PASS|MISS) (\S+)$"
START = re.compile(r"""exercises\.start\(\s*["']([0-9]{2}_\w+)["']""")


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


def graded_copy(nb, checks: dict[str, str]):
    """The notebook to run: every check cell replaced by the course's check of the same exercise (a check cell
    of an exercise the course does not know is left out), and the Colab cell's install skipped."""
    nb = nbformat.v4.upgrade(nb) if nb.nbformat < 4 else nb
    kept = []
    for cell in nb.cells:
        if cell.cell_type == "code" and (is_check(cell) or checked_exercise(cell)):
            name = checked_exercise(cell)
            if name not in checks:
                continue
            cell = nbformat.v4.new_code_cell(checks[name])
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        kept.append(cell)
    nb.cells = kept
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


_RUNNER = r"""
import sys, nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
path, out, cell_timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
nb = nbformat.read(path, 4)
note = ""
try:
    NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
                   resources={"metadata": {"path": sys.argv[4]}}).execute()
except DeadKernelError:
    note = "the kernel died"
except Exception as err:
    note = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:200] if str(err).strip() else ''}"
nb.metadata["grade_note"] = note
nbformat.write(nb, out)
"""


# Run as ``sh -c SANDBOX sandbox WORK command...`` inside ``unshare``: WORK stays writable, every other mount
# turns read-only (/tmp with them: TMPDIR is in WORK), /dev/shm becomes an empty one, the loopback comes up for
# the kernel's sockets. The
# probe at the end refuses to go on if the root is still writable.
SANDBOX = r"""
set -e
W="$1"; shift
mount --bind "$W" "$W"
mount -t tmpfs tmpfs /dev/shm
for m in $(findmnt -rno TARGET | sort -u); do
  case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|"$W"|"$W"/*) ;; *) mount -o remount,bind,ro "$m" 2>/dev/null || true ;; esac
done
ip link set lo up 2>/dev/null || true
if ( : > /.course-grade-probe ) 2>/dev/null; then rm -f /.course-grade-probe; echo "the sandbox left / writable" >&2; exit 97; fi
exec "$@"
"""
UNSHARE = ["unshare", "--mount", "--net", "--pid", "--kill-child", "--mount-proc", "--propagation", "private"]
_sandbox_works: bool | None = None


def sandbox_available() -> bool:
    """Whether notebooks can be graded in a sandbox here (tried once, with ``true`` as the notebook)."""
    global _sandbox_works
    if _sandbox_works is None:
        _sandbox_works = False
        if shutil.which("unshare") and hasattr(os, "geteuid") and os.geteuid() == 0:
            with tempfile.TemporaryDirectory(prefix="grade-probe-") as work:
                try:
                    done = subprocess.run(UNSHARE + ["sh", "-c", SANDBOX, "sandbox", work, "true"],
                                          capture_output=True, timeout=30)
                    _sandbox_works = done.returncode == 0
                except (OSError, subprocess.TimeoutExpired):
                    pass
    return _sandbox_works


def _run(notebook: Path, work: Path, cell_timeout: int, timeout: int) -> tuple[object | None, str]:
    """Run ``notebook`` in the folder ``work`` in a process of its own (killed, with everything it started,
    after ``timeout`` seconds); returns ``(the executed notebook or None, a note)``."""
    out = work / "executed.ipynb"
    token = os.urandom(8).hex()          # a line the notebook prints itself does not count: it lacks the token
    env = dict(os.environ, HOME=str(work / "home"), COURSE_DATA=str(work / "data"), COURSE_PROFILE="smoke",
               TMPDIR=str(work / "tmp"), JUPYTER_RUNTIME_DIR=str(work / "runtime"), IPYTHONDIR=str(work / "ipython"),
               MPLCONFIGDIR=str(work / "matplotlib"), MPLBACKEND="agg", PYTHONDONTWRITEBYTECODE="1",
               **{GRADING: token})
    for name in ("COLAB_RELEASE_TAG", "COURSE_MNIST", "COURSE_IMAGENETTE", "COURSE_REQUIRE_DATA"):
        env.pop(name, None)
    for folder in ("home", "data", "tmp", "runtime", "ipython", "matplotlib"):
        (work / folder).mkdir(exist_ok=True)
    command = [sys.executable, "-c", _RUNNER, str(notebook), str(out), str(cell_timeout), str(work)]
    if sandbox_available():
        command = UNSHARE + ["sh", "-c", SANDBOX, "sandbox", str(work)] + command
    proc = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, f"stopped after {timeout} s"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)     # the kernel and anything the notebook started
        except ProcessLookupError:
            pass
    if not out.exists():
        return None, f"could not be run ({err.strip().splitlines()[-1][:200] if err.strip() else 'no output'})"
    executed = nbformat.read(out, 4)
    executed.metadata["grade_token"] = token
    return executed, executed.metadata.get("grade_note", "")


def _marks(nb) -> dict[str, str]:
    """``{exercise: "PASS" or "MISS"}`` from the grading lines the checks printed (the last word for each)."""
    found = {}
    mark = re.compile(MARK.format(token=re.escape(nb.metadata.get("grade_token", ""))), re.M)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            for verdict, name in mark.findall(text if isinstance(text, str) else "".join(text)):
                found[name] = verdict
    return found


def grade_one(path: Path, checks: dict, cell_timeout: int = 120, timeout: int = 600) -> dict:
    """One row of ``grades.csv`` for the notebook at ``path``: ``{"file", "lesson", "passed", "total",
    "missed", "note"}``, from a run in a temporary folder of its own."""
    row = {"file": path.name, "lesson": "", "passed": 0, "total": "", "missed": "", "note": ""}
    try:
        nb = nbformat.read(path, 4)
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
        work = Path(scratch)
        copy = work / "submission.ipynb"
        nbformat.write(graded_copy(nb, checks[lesson]), copy)
        executed, note = _run(copy, work, cell_timeout, timeout)
    marks = _marks(executed) if executed is not None else {}
    passed = [n for n in names if marks.get(n) == "PASS"]
    missing = [n for n in names if n not in marks]
    row.update(passed=len(passed), missed=" ".join(n for n in names if n not in passed))
    notes = [note] if note else []
    if missing and executed is not None:
        notes.append(f"not checked: {' '.join(missing)}")
    if not sandbox_available():
        notes.append("run without a sandbox (grade as root with unshare for one)")
    row["note"] = "; ".join(notes)
    return row


def grade(folder: str | os.PathLike, cell_timeout: int = 120, timeout: int = 600,
          src: Path = ROOT / "notebooks") -> Path:
    """Grade every file in ``folder`` (but ``grades.csv`` and hidden files) and write ``folder/grades.csv``
    (atomically), one row per file, sorted by name. Returns its path. Raises ``NotADirectoryError`` for a
    folder that is not one."""
    from ..files import atomic_write

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder of notebooks to grade.")
    checks = exercise_checks(src)
    rows = [grade_one(p, checks, cell_timeout, timeout) for p in sorted(folder.iterdir())
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
    args = parser.parse_args(argv)
    try:
        path = grade(args.folder, args.cell_timeout, args.timeout)
    except (NotADirectoryError, NotebookError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        print(f"{r['file']}: {r['lesson'] or '?'} {r['passed']} of {r['total'] or '?'}"
              + (f" (missed {r['missed']})" if r["missed"] else "") + (f" — {r['note']}" if r["note"] else ""))
    print(f"wrote {path}")
    return 0

"""Instructor tooling: student notebooks and executed solutions from the lesson sources.

The sources in ``notebooks/`` hold full solutions between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` (nbgrader's markers). From them:

* ``student``   writes ``student/NAME.ipynb``: solution regions become ``# YOUR CODE HERE`` plus
  ``raise NotImplementedError()`` (markdown: ``YOUR ANSWER HERE``), outputs cleared, metadata reduced.
* ``solutions`` executes every source and writes ``solutions/NAME.ipynb`` with its outputs.
* ``check``     fails, naming the files, when anything generated is stale or a source is malformed.

Run as ``python -m course_lib.assign {student,solutions,check}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path

import nbformat

from .lock import lock_problems
from .release import PINNED_INSTALL, badge, colab_install, point_badges, release_info

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# Anything a hand could type for a marker: a misspelled one must be an error, never copied through.
# (with #s or without, in an HTML comment, with - or _ between the words)
NEAR_MARKER = re.compile(r"\b(begin|end)[\s_-]*solutions?\b", re.IGNORECASE)
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
MARKDOWN_STUB = "YOUR ANSWER HERE"
CHECK_PREFIX = "# CHECK"  # the first line of the code cell that checks an exercise
COLAB_MARKER = "# Colab set-up"
ROOT = Path(__file__).resolve().parent.parent
KEPT_METADATA = ("kernelspec", "language_info")
# A Colab install must name a tag or a full commit, never a branch that can drift.
def _root_of(src) -> Path:
    """The course tree of a lesson folder: its parent when that holds a pyproject.toml, else this one."""
    parent = Path(src).resolve().parent
    return parent if (parent / "pyproject.toml").exists() else ROOT


class NotebookError(ValueError):
    """A lesson source is malformed (the message names the notebook and cell)."""


def lessons(src: Path) -> list[Path]:
    """The lesson sources ``NN_name.ipynb`` in ``src``, in order."""
    return sorted(p for p in Path(src).glob("[0-9][0-9]_*.ipynb"))


def _lines(source: str) -> list[str]:
    return source.split("\n")


def strip_solutions(source: str, cell_type: str, where: str) -> str:
    """Replace every solution region of one cell's source by its stub, keeping the indentation.

    Raises :class:`NotebookError` (naming ``where``) for an unbalanced or nested marker.
    """
    out: list[str] = []
    inside = False
    for number, line in enumerate(_lines(source), 1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise NotebookError(f"{where}, line {number}: nested {BEGIN!r} (the previous one is not closed).")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            if cell_type == "code":
                out.extend(indent + s for s in CODE_STUB)
            else:
                out.append(indent + MARKDOWN_STUB)
        elif stripped == END:
            if not inside:
                raise NotebookError(f"{where}, line {number}: {END!r} without a {BEGIN!r} before it.")
            inside = False
        elif NEAR_MARKER.search(line):
            raise NotebookError(f"{where}, line {number}: {stripped!r} looks like a solution marker but is not "
                                f"exactly {BEGIN!r} or {END!r}: fix its spelling, or the solution would be "
                                "copied into the student notebook.")
        elif not inside:
            out.append(line)
    if inside:
        raise NotebookError(f"{where}: {BEGIN!r} is never closed by {END!r}.")
    return "\n".join(out)


def has_solution(cell) -> bool:
    return any(line.strip() == BEGIN for line in _lines(cell.source))


def is_check(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_PREFIX)


def validate(nb, name: str, root: Path = ROOT) -> list[str]:
    """Problems of one source notebook: outputs stored, unbalanced markers (raised), an exercise
    without a check cell after it, a missing or unpinned Colab cell. Returns the messages."""
    problems = []
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(nb.cells, 1):
        strip_solutions(cell.source, cell.cell_type, f"{name}, cell {i}")  # raises on bad markers
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(f"{name}, cell {i}: the source carries outputs (clear them before committing).")
        if cell.cell_type == "code" and has_solution(cell):
            later = [c for c in nb.cells[i:] if c.cell_type == "code"]
            nxt = next((c for c in later if not has_solution(c)), None)
            if nxt is None or not is_check(nxt):
                problems.append(f"{name}, cell {i}: this exercise has no check cell after it "
                                f"(a code cell starting with {CHECK_PREFIX!r}).")
        if is_check(cell):
            before = [c for c in nb.cells[:i - 1] if c.cell_type == "code"]
            if not before or not has_solution(before[-1]):
                problems.append(f"{name}, cell {i}: a check cell with no exercise right before it (the code "
                                f"cell before a {CHECK_PREFIX!r} cell must hold a {BEGIN!r} region).")
    kernel = nb.metadata.get("kernelspec", {})
    if kernel.get("language", "python") != "python" or not str(kernel.get("name", "python3")).startswith("python"):
        problems.append(f"{name}: its kernel is {kernel.get('name')!r} ({kernel.get('language')!r}): the lessons are "
                        "Python notebooks (kernelspec python3).")
    if not nb.cells or nb.cells[0].cell_type != "markdown" or badge(name, root=root) not in nb.cells[0].source:
        problems.append(f"{name}: the first cell must be markdown with the lesson's Colab badge: "
                        f"{badge(name, root=root)}")
    if not code_cells or COLAB_MARKER not in code_cells[0].source:
        problems.append(f"{name}: the first code cell must be the Colab set-up cell ({COLAB_MARKER!r}).")
    elif not PINNED_INSTALL.search(code_cells[0].source):
        problems.append(f"{name}: the Colab cell must install course_lib at a tag (vX.Y.Z) or a full commit.")
    elif colab_install(root) not in code_cells[0].source:
        problems.append(f"{name}: the Colab cell must install this release ({colab_install(root)}): run "
                        "`make release TAG=...` to move every lesson to a new one.")
    return problems


def make_student(nb, name: str, root: Path = ROOT):
    """The student version of a source notebook (a new notebook; the source is untouched)."""
    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells, 1):
        cell.source = strip_solutions(cell.source, cell.cell_type, f"{name}, cell {i}")
        if "attachments" in cell:   # a picture pasted into an answer goes with the answer
            kept = {k: v for k, v in cell.attachments.items() if f"attachment:{k}" in cell.source}
            if kept:
                cell.attachments = kept
            else:
                del cell["attachments"]
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in ("tags",)}
        cell.pop("id", None)
    out.metadata = {k: v for k, v in nb.metadata.items() if k in KEPT_METADATA}
    out.nbformat, out.nbformat_minor = 4, 4
    point_badges(out, name, "student", root)
    return out


def _dumps(nb) -> str:
    return nbformat.writes(nb) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    from .files import atomic_write

    atomic_write(path, lambda f: f.write(text), mode="w")


def student(src: Path = ROOT / "notebooks", dst: Path = ROOT / "student") -> list[Path]:
    """Write the student version of every lesson; returns the paths written. Deterministic."""
    written = []
    for path in lessons(src):
        nb = read_notebook(path)
        problems = validate(nb, path.name, _root_of(src))
        if problems:
            raise NotebookError("\n".join(problems))
        target = Path(dst) / path.name
        write_atomic(target, _dumps(make_student(nb, path.name, _root_of(src))))
        written.append(target)
    return written


def execute(nb, cwd: Path, profile: str, timeout: int = 1800):
    """Run a notebook top to bottom with ``COURSE_PROFILE=profile``; returns the executed copy.

    A failing cell raises ``nbclient``'s ``CellExecutionError`` (its message shows the cell)."""
    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    old = os.environ.get("COURSE_PROFILE")
    os.environ["COURSE_PROFILE"] = profile
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        if old is None:
            os.environ.pop("COURSE_PROFILE", None)
        else:
            os.environ["COURSE_PROFILE"] = old
    return nb


LIBRARY = Path(__file__).resolve().parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# Parts of course_lib that no lesson runs: the site builder (changing it re-runs no lesson).
# The instructor's tools: no lesson imports them (tests/test_assign.py checks), so changing them does not
# make a solution stale.
NOT_RUN_BY_LESSONS = ("site.py", "site_static", "assign.py", "release.py", "lock.py")


def fingerprint(source: Path, library: Path = LIBRARY) -> dict[str, str]:
    """What a solution notebook was made from: SHA-256 of the lesson source's bytes and of the library
    (every file of ``course_lib`` but :data:`NOT_RUN_BY_LESSONS`, names and bytes, in order)."""
    import hashlib

    lib = hashlib.sha256()
    files = (p for p in Path(library).rglob("*") if p.is_file() and "__pycache__" not in p.parts
             and p.relative_to(library).parts[0] not in NOT_RUN_BY_LESSONS)
    for f in sorted(files):
        lib.update(str(f.relative_to(library)).encode() + b"\0" + f.read_bytes())
    return {"source": hashlib.sha256(Path(source).read_bytes()).hexdigest(), "library": lib.hexdigest()}


def _stable_widget_ids(nb, name: str) -> None:
    """Widget outputs name a random model id on every run; the stored notebook keeps no widget state,
    so the id is replaced by one derived from the lesson, the cell and the output (same run, same id)."""
    import hashlib

    for i, cell in enumerate(nb.cells):
        for j, out in enumerate(cell.get("outputs", [])):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view is not None and "model_id" in view:
                view["model_id"] = hashlib.sha1(f"{name}/{i}/{j}".encode()).hexdigest()[:32]


# What changes from run to run without the lesson changing: durations and speeds, memory addresses.
VOLATILE = re.compile(r"\d[\d,]*(?:\.\d+)?(?=\s*(?:ms|s|µs|min|images/s|it/s|s/it)\b)|0x[0-9a-fA-F]{6,}")


def _masked(outputs) -> str:
    """The outputs as JSON with the volatile parts of their text masked (pictures are compared whole)."""
    masked = copy.deepcopy(list(outputs))
    for out in masked:
        if "text" in out:
            out["text"] = VOLATILE.sub("#", "".join(out["text"]))
        for mime in ("text/plain", "text/html"):
            if mime in out.get("data", {}):
                out["data"][mime] = VOLATILE.sub("#", "".join(out["data"][mime]))
    return json.dumps(masked, sort_keys=True)


def _coalesce_streams(nb) -> None:
    """Join each run of consecutive stream outputs of one name (stdout, stderr) into one, in place: how
    printed text is split into messages depends on timing, what it says does not."""
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                    and merged[-1].get("name") == out.get("name")):
                merged[-1]["text"] = "".join(merged[-1]["text"]) + "".join(out["text"])
            else:
                merged.append(out)
        if "outputs" in cell:
            cell.outputs = merged


def _keep_unchanged_outputs(new, old) -> None:
    """Where a cell of the new run has the same source as the old solution's and its outputs differ from
    the old ones only in timings or addresses (:data:`VOLATILE`), keep the old outputs (in place), so a
    re-run of an unchanged lesson changes no byte. Figures and every other number must match exactly."""
    if len(new.cells) != len(old.cells):
        return
    for cell, before in zip(new.cells, old.cells):
        if (cell.cell_type == "code" and before.cell_type == "code" and cell.source == before.source
                and cell.outputs != before.outputs and _masked(cell.outputs) == _masked(before.outputs)):
            cell.outputs = before.outputs


def solutions(src: Path = ROOT / "notebooks", dst: Path = ROOT / "solutions", profile: str = "cpu",
              only: list[str] | None = None, force: bool = False) -> list[Path]:
    """Execute the lessons (or those named in ``only``) and write ``dst/NAME.ipynb`` with outputs.

    A lesson whose solution was made in this ``profile`` from the same source bytes and the same library
    (:func:`fingerprint`, kept in the notebook's metadata) is skipped, and its file is not touched, unless
    ``force``. A failure names the notebook and the cell and leaves the previous solution file untouched.
    Returns the files written.
    """
    from nbclient.exceptions import CellExecutionError
    from tqdm.auto import tqdm

    known = lessons(src)
    unknown = [n for n in only or () if not any(n in (p.stem, p.name) for p in known)]
    if unknown:
        raise NotebookError(f"No lesson {', '.join(map(repr, unknown))} in {src}: expected some of "
                            f"{', '.join(p.stem for p in known)}.")
    paths = [p for p in known if not only or p.stem in only or p.name in only]
    todo = []
    for path in paths:
        made = {"profile": profile, **fingerprint(path)}
        target = Path(dst) / path.name
        try:
            current = not force and target.exists() and read_notebook(target).metadata.get("course") == made
        except NotebookError:
            current = False
        if current:
            print(f"{target.name}: unchanged source and library, not run again (--all to force)")
        else:
            todo.append((path, target, made))
    written = []
    for path, target, made in tqdm(todo, desc=f"executing lessons ({profile})", unit="notebook"):
        nb = read_notebook(path)
        try:
            done = execute(nb, Path(src), profile)
        except CellExecutionError as err:
            raise RuntimeError(f"{path.name} failed in the {profile!r} profile; "
                               f"{target} was left as it was.\n{err}") from None
        done.metadata = {k: v for k, v in done.metadata.items() if k in KEPT_METADATA}
        done.metadata["course"] = made
        done.nbformat, done.nbformat_minor = 4, 4  # no cell ids: stable files and diffs
        point_badges(done, path.name, "solutions", _root_of(src))
        for cell in done.cells:
            cell.pop("id", None)
            cell.metadata.pop("execution", None)
        _stable_widget_ids(done, path.name)
        _coalesce_streams(done)
        try:
            _keep_unchanged_outputs(done, read_notebook(target))
        except (NotebookError, FileNotFoundError):
            pass  # no earlier solution to keep outputs from
        write_atomic(target, _dumps(done))
        written.append(target)
    return written


def _code_sources(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def read_notebook(path: Path):
    """Read a notebook; a file that is not valid notebook JSON raises :class:`NotebookError` naming it."""
    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises NotJSONError, ValidationError or a JSON decode error
        first = str(err).strip().split("\n")[0][:160]
        raise NotebookError(f"{path} is not a valid notebook ({type(err).__name__}: {first}).") from None


# Numbers a lesson may state in its words without printing them: dates, figures of the papers and of the
# architectures it quotes, lesson numbers. Every other number in a solution's markdown must appear in that
# lesson's outputs or code, so that the words cannot drift from what the lesson measures.
SOURCED_NUMBERS = frozenset("""
00 01 02 03 04 05 06 07 08 1989 1993 1998 2009 2012 2013 2014 2015 2017 2018 2019 2022
2,578 3,246 9,760 1.7 0.95 0.8 15.3 16.4 26.2 18.2 60,000 10,000 70,000 5,000 4,000 1,000 60 1.2 580 3
60,965,224 61 90 224 256 227 11 96 48 4096 384 1,930 104 512 120 84 16 20 28 163 255 1024 2048 29400
25,450 3,190 5e-4 1e-4 0.75 0.5 10 12 13 32 100 50 86 25 192 55 27 6 64 0.61
""".split())

NUMBER = re.compile(r"(?<![\w.$])\d[\d,]*(?:\.\d+)?(?:e-?\d+)?")


def unsupported_numbers(nb) -> list[tuple[int, str]]:
    """The numbers in a solution notebook's markdown that are neither in its outputs or code nor in
    :data:`SOURCED_NUMBERS` (whole numbers below 10 are words, not measurements): ``[(cell, number)]``.
    Links, inline code and math are left out of the words."""
    said = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            said.append(cell.source)
            for out in cell.get("outputs", []):
                said.append(out.get("text", "") if isinstance(out.get("text", ""), str) else "".join(out["text"]))
                said.extend(v for k, v in out.get("data", {}).items() if k.startswith("text/") and isinstance(v, str))
    value = lambda n: float(n.rstrip(",").replace(",", ""))     # 0.20 is 0.2; 60,000 is 60000
    printed = {value(n) for n in NUMBER.findall("\n".join(said))}
    sourced = {value(n) for n in SOURCED_NUMBERS}
    found = []
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"\]\([^)]*\)|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|https?://\S+", " ", cell.source, flags=re.S)
        for number in NUMBER.findall(text):
            n = number.rstrip(",")
            if value(n) in printed or value(n) in sourced or (n.isdigit() and int(n) < 10):
                continue
            found.append((i, n))
    return found


def check(src: Path = ROOT / "notebooks", student_dir: Path = ROOT / "student",
          solutions_dir: Path = ROOT / "solutions", library: Path = LIBRARY) -> list[str]:
    """Every problem with the sources and the generated notebooks, as messages (empty = all good).

    A solution is stale when its code differs from the source's, or when it was made from other source
    bytes or another ``library`` (:func:`fingerprint`, as ``make solutions`` records it): a library edit
    can change a lesson's outputs without changing its code."""
    problems = []
    paths = lessons(src)
    if not paths:
        return [f"No lesson sources (NN_name.ipynb) in {src}."]
    for folder in (Path(student_dir), Path(solutions_dir)):
        for orphan in sorted(set(p.name for p in lessons(folder)) - set(p.name for p in paths)):
            problems.append(f"{folder / orphan} has no source {Path(src) / orphan}: delete it, or restore its source.")
    for path in paths:
        try:
            nb = read_notebook(path)
            problems += validate(nb, path.name, _root_of(src))
            expected = _dumps(make_student(nb, path.name, _root_of(src)))
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
                now = fingerprint(path, library)
                if _code_sources(solved) != _code_sources(nb) or made.get("source") != now["source"]:
                    problems.append(f"{sol} was made from an older {path}: run `make solutions`.")
                elif made.get("library") != now["library"]:
                    problems.append(f"{sol} was made with another version of course_lib ({Path(library).name}/ "
                                    "changed since): run `make solutions`.")
            except NotebookError as err:
                problems.append(f"{err} Run `make solutions`.")
            else:
                for cell, number in unsupported_numbers(solved):
                    problems.append(f"{sol}, cell {cell}: the words say {number}, which the lesson neither prints nor "
                                    "states in its code, and which is not a sourced fact (assign.SOURCED_NUMBERS): "
                                    "print it from the run, or source it.")
    readme = _root_of(src) / "README.md"
    if readme.exists() and _root_of(src) == Path(src).resolve().parent:   # the lesson table of this tree
        text = readme.read_text(encoding="utf-8")
        for path in paths:
            for folder in ("student", "solutions"):
                if badge(path.name, folder, _root_of(src)) not in text:
                    problems.append(f"{readme.name} lacks the Colab badge of {folder}/{path.name} at this release "
                                    f"({release_info(_root_of(src))[1]}): add it to the lesson table.")
        problems += lock_problems(_root_of(src))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.assign", description=__doc__.split("\n")[0])
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
                print(f"assign check: {msg}", file=sys.stderr)
            if problems:
                return 1
            print(f"assign check: {len(lessons(ROOT / 'notebooks'))} lessons, student and solution notebooks up to date")
    except (NotebookError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

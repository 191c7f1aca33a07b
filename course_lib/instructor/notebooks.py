"""Student notebooks from the lesson sources, and the exercises' hints shipped with the library.

The sources in ``notebooks/`` hold full solutions between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
(nbgrader's markers). :func:`student` writes ``student/NAME.ipynb``: solution regions become ``# YOUR CODE
HERE`` plus ``raise NotImplementedError()`` (markdown: ``YOUR ANSWER HERE``), outputs cleared, metadata
reduced. :func:`validate` finds what is malformed in a source.

A check cell names its exercise (``with exercises.check("my_sparsity"):``) and keeps its hint in its
metadata (``{"exercise": {"name": ..., "hint": ...}}``), never in its code: :func:`student` also writes them
all to ``course_lib/exercise_hints.json``, from which ``exercises.check`` shows a hint after the second miss.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

import nbformat

from .course import ROOT, NotebookError, lessons, read_notebook, root_of, write_text
from .release import PINNED_INSTALL, badge, colab_install, point_badges

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# Anything a hand could type for a marker: a misspelled one must be an error, never copied through.
# (with #s or without, in an HTML comment, with - or _ between the words, the words the other way round,
# with invisible characters or letters of other alphabets that look the same: see _plain_letters)
NEAR_MARKER = re.compile(r"\b(begin|end)[\s_-]*solutions?\b|\bsolutions?[\s_-]*(begin|end)\b", re.IGNORECASE)
# Cyrillic and Greek letters that look like the Latin ones of BEGIN, END and SOLUTION
LOOKALIKES = str.maketrans("АВЕНІЈКМОРСТХаеіјорсхΑΒΕΗΙΚΜΝΟΡΤΧΥΖοΟ", "ABEHIJKMOPCTXaeijopcxABEHIKMNOPTXYZoO")
INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")


def _plain_letters(line: str) -> str:
    """``line`` as a reader sees it: Unicode-normalized (NFKC), without invisible characters, lookalike letters
    made Latin — what a marker check must compare."""
    import unicodedata

    return INVISIBLE.sub("", unicodedata.normalize("NFKC", line)).translate(LOOKALIKES)
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
MARKDOWN_STUB = "YOUR ANSWER HERE"
CHECK_PREFIX = "# CHECK"  # the first line of the code cell that checks an exercise
COLAB_MARKER = "# Colab set-up"
KEPT_METADATA = ("kernelspec", "language_info")
HINTS = ROOT / "course_lib" / "exercise_hints.json"


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
        seen = _plain_letters(stripped)
        if seen != stripped and seen in (BEGIN, END):
            raise NotebookError(f"{where}, line {number}: {stripped!r} looks like {seen!r} but holds other characters "
                                "(invisible ones, or letters of another alphabet): type the marker again.")
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
        elif NEAR_MARKER.search(_plain_letters(line)):
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


def checked_exercise(cell) -> str | None:
    """The name of the exercise a check cell checks (the first argument of its ``exercises.check(...)``)."""
    try:
        tree = ast.parse("\n".join("pass" if line.lstrip().startswith(("%", "!")) else line
                                   for line in cell.source.splitlines()))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "exercises" and node.args
                and isinstance(node.args[0], ast.Constant)):
            return node.args[0].value
    return None


def _inline_hint(cell) -> bool:
    """Does the check cell pass its hint in its code (``exercises.check(..., hint=...)``)?"""
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return False
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "check"
               and any(k.arg == "hint" for k in n.keywords) for n in ast.walk(tree))


def _parsed(source: str):
    try:
        return ast.parse("\n".join("pass" if line.lstrip().startswith(("%", "!")) else line
                                   for line in source.splitlines()))
    except SyntaxError:
        return None


def _names(source: str) -> tuple[set[str], set[str]]:
    """``(names the cell binds, names it reads without binding them)``; function and lambda parameters and
    comprehension variables count as bound."""
    tree = _parsed(source)
    if tree is None:
        return set(), set()
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    bound |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    bound |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    bound |= {(a.asname or a.name).split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
              for a in n.names}
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return bound, read - bound


def _only_a_check(cell) -> bool:
    """Is the check cell's code one ``with exercises.check(...):`` block and nothing else (comments aside)?"""
    tree = _parsed(cell.source)
    return (tree is not None and len(tree.body) == 1 and isinstance(tree.body[0], ast.With)
            and checked_exercise(cell) is not None)


def check_cell_leaks(nb, name: str) -> list[str]:
    """Problems where a cell reads a name that only a check cell before it binds: the lesson must run on
    whatever the check does (it may fail half way, and ``make grade`` swaps it for the course's own)."""
    problems, lesson_names, check_names = [], set(), {}
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        bound, read = _names(cell.source)
        for leaked in sorted(n for n in read - lesson_names if n in check_names):
            problems.append(f"{name}, cell {i}: reads {leaked!r}, which only the check cell {check_names[leaked]} "
                            "sets; set it in a lesson cell (a check may fail half way or be replaced).")
        if is_check(cell):
            for n in bound - lesson_names:
                check_names.setdefault(n, i)
        else:
            lesson_names |= bound
            for n in bound:
                check_names.pop(n, None)
    return problems


def exercise_hints(src: Path = ROOT / "notebooks") -> dict[str, dict[str, str]]:
    """``{lesson: {exercise: hint}}`` from the check cells' metadata of every lesson source in ``src``."""
    hints = {}
    for path in lessons(src):
        for cell in read_notebook(path).cells:
            meta = cell.get("metadata", {}).get("exercise")
            if is_check(cell) and isinstance(meta, dict) and meta.get("hint"):
                hints.setdefault(path.stem, {})[meta.get("name")] = meta["hint"]
    return hints


def hints_text(src: Path = ROOT / "notebooks") -> str:
    """The text of ``exercise_hints.json`` made from the sources in ``src`` (sorted, stable)."""
    return json.dumps(exercise_hints(src), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


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
            exercise = checked_exercise(cell)
            meta = cell.get("metadata", {}).get("exercise", {})
            if exercise is None:
                problems.append(f"{name}, cell {i}: a check cell must check one exercise by name "
                                "(with exercises.check(\"NAME\"):).")
            elif not isinstance(meta, dict) or meta.get("name") != exercise or not str(meta.get("hint", "")).strip():
                problems.append(f"{name}, cell {i}: the check of {exercise!r} needs its hint in the cell's metadata: "
                                f'{{"exercise": {{"name": "{exercise}", "hint": "..."}}}} '
                                '(shown after the second miss).')
            if exercise is not None and not _only_a_check(cell):
                problems.append(f"{name}, cell {i}: a check cell holds one `with exercises.check(\"{exercise}\"):` "
                                "block and nothing else (a line after it would run, and print, whether the check "
                                "passed or not).")
            if _inline_hint(cell):
                problems.append(f"{name}, cell {i}: the hint is in the check cell's code, which the student notebook "
                                "shows before the learner has tried: move it to the cell's metadata.")
            before = [c for c in nb.cells[:i - 1] if c.cell_type == "code"]
            if not before or not has_solution(before[-1]):
                problems.append(f"{name}, cell {i}: a check cell with no exercise right before it (the code "
                                f"cell before a {CHECK_PREFIX!r} cell must hold a {BEGIN!r} region).")
    problems += check_cell_leaks(nb, name)
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
            kept = {k: v for k, v in cell.attachments.items()
                    if re.search(rf"attachment:{re.escape(k)}(?=[)\s\"'>]|$)", cell.source)}
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


def dumps(nb) -> str:
    """A notebook as the text the course stores: nbformat's, and a final newline."""
    return nbformat.writes(nb) + "\n"


def student(src: Path = ROOT / "notebooks", dst: Path = ROOT / "student", hints: Path | None = None) -> list[Path]:
    """Write the student version of every lesson, and the exercises' hints (``hints``: default
    ``course_lib/exercise_hints.json`` for this course's own sources, else none); returns the paths written.
    Deterministic."""
    written = []
    for path in lessons(src):
        nb = read_notebook(path)
        problems = validate(nb, path.name, root_of(src))
        if problems:
            raise NotebookError("\n".join(problems))
        target = Path(dst) / path.name
        write_text(target, dumps(make_student(nb, path.name, root_of(src))))
        written.append(target)
    hints = HINTS if hints is None and Path(src).resolve() == (ROOT / "notebooks").resolve() else hints
    if hints is not None:
        write_text(Path(hints), hints_text(src))
        written.append(Path(hints))
    return written

"""Every exercise's check cell rejects plausible wrong answers (``test_exercises.WRONG``), tried in the kernel
in which nbval runs the lesson's solution, so that the lesson runs once for both: after a check cell passes,
each wrong answer of its exercise is defined and the check run again (it must miss, say what was expected, and
give a hint from the second miss on), then the blank student version (it must miss too); then the right answer
is put back and checked, and the lesson goes on. At the lesson's last such check, every wrong answer of the
table must have been tried. The root ``conftest.py`` installs :func:`pytest_runtest_call` for ``solutions/``."""

from __future__ import annotations

import re
from pathlib import Path
from queue import Empty

import pytest

from course_lib.instructor import notebooks

ANSI = re.compile(r"\x1b\[[0-9;]*m")
_tried: dict[str, list] = {}       # lesson -> [wrong answers tried, blanks tried]


def defines(cell, name: str) -> bool:
    """The exercise cell of ``name``: a function or class of that name, or (a "predict, then run" question) a
    variable the learner sets to their prediction."""
    return cell.cell_type == "code" and (f"def {name}(" in cell.source or f"class {name}(" in cell.source
                                         or re.search(rf"^{name}\s*=", cell.source, re.M) is not None)


def student_cell(source: str) -> str:
    """The student version of an exercise cell: its solution replaced by the stub that raises."""
    return notebooks.strip_solutions(source, "code", "exercise")


def run(item, source: str, timeout: float = 600) -> str | None:
    """Run ``source`` in the kernel of nbval's ``item``; return None, or the error it raised as
    ``"Name: message"`` followed by its traceback (without colours)."""
    kernel = item.parent.kernel
    msg_id = kernel.execute_cell_input(source, allow_stdin=False)
    kernel.await_reply(msg_id, timeout=timeout)
    error = None
    while True:
        try:
            msg = item.parent.get_kernel_message(timeout=timeout)
        except Empty:
            raise RuntimeError(f"no answer from the kernel in {timeout} s running:\n{source}") from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            content = msg["content"]
            error = ANSI.sub("", f"{content['ename']}: {content['evalue']}\n" + "\n".join(content["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return error


def try_wrong_answers(item, wrong: dict[str, list]) -> None:
    """After nbval ran check cell ``item`` of a solution: its exercise's wrong answers and blank must miss."""
    stem = Path(str(item.parent.path)).stem
    cases = wrong.get(stem)
    if not cases or not notebooks.is_check(item.cell):
        return
    cells = item.parent.nb.cells
    at = next(i for i, c in enumerate(cells) if c is item.cell)
    exercise = next((c for c in reversed(cells[:at]) if c.cell_type == "code" and notebooks.has_solution(c)), None)
    names = [name for name, _, _ in cases if exercise is not None and defines(exercise, name)]
    if not names:
        return
    tried = _tried.setdefault(stem, [0, 0])
    for number, (name, code, message) in enumerate(c for c in cases if c[0] in names):
        assert run(item, "import torch.nn.functional as F\n" + code) is None, f"{name}: the wrong answer itself failed"
        said = run(item, item.cell.source)
        assert said is not None and said.startswith("Miss"), f"{name}: the check accepted a wrong answer:\n{code}"
        assert message in said, f"{name}: the check said {said.splitlines()[0]!r}, expected {message!r} in it"
        assert ("Hint: " in said) == (number >= 1), f"{name}: a hint from the second wrong answer on:\n{said}"
        tried[0] += 1
    if all(re.search(rf"^{n}\s*=", exercise.source, re.M) for n in names):
        # a prediction: the blank cell stops where the learner must write their number
        run(item, "\n".join(f"globals().pop({n!r}, None)" for n in names))
        blank = run(item, student_cell(exercise.source))
        assert blank is not None and blank.startswith("NotImplementedError"), f"{names}: the blank cell ran: {blank}"
        blank_says = "is not defined"
    else:
        assert run(item, student_cell(exercise.source)) is None
        blank_says = "NotImplementedError"
    said = run(item, item.cell.source)
    assert said is not None and said.startswith("Miss") and blank_says in said, f"{names}: the blank passed: {said}"
    tried[1] += 1
    assert run(item, exercise.source) is None and run(item, item.cell.source) is None, \
        f"{names}: the right answer, put back, no longer passes"
    tested = [i for i, c in enumerate(cells) if c.cell_type == "code" and notebooks.has_solution(c)
              and any(defines(c, n) for n, _, _ in cases)]
    if at == next(i for i in range(max(tested) + 1, len(cells)) if notebooks.is_check(cells[i])):
        exercises = sum(1 for c in cells if c.cell_type == "code" and notebooks.has_solution(c))
        assert tried == [len(cases), exercises], \
            f"{stem}: tried {tried[0]} of {len(cases)} wrong answers and {tried[1]} of {exercises} blanks"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield          # nbval's own run of the cell: when it failed, that failure is the report
    if type(item).__name__ == "IPyNbCell" and Path(str(item.parent.path)).parent.name == "solutions":
        from test_exercises import WRONG
        try_wrong_answers(item, WRONG)
    return result

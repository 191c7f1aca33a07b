"""Every exercise's check cell rejects plausible wrong answers (``test_exercises.WRONG``), tried in the kernel
in which nbval runs the lesson's solution, so that the lesson runs once for both: after a check cell passes,
each wrong answer of its exercise is defined and the check run again (it must miss, say what was expected, and
give a hint from the second miss on), then the blank student version (it must miss too); then the right answer
is put back and checked, and the kernel's random generators and the exercises' record are restored, so that
the lesson goes on as it would have. When a lesson's last cell has run, every wrong answer of the table must
have been tried. The root ``conftest.py`` installs the two hooks for ``solutions/``."""

from __future__ import annotations

import re
from pathlib import Path
from queue import Empty

import pytest

from course_lib.instructor import notebooks

_tried: dict[str, list] = {}       # lesson -> [wrong answers tried, blanks tried]

# Run in the kernel around the wrong answers: what they could change that the lesson's next cells read.
SAVE = """import random as _r, numpy as _np, torch as _t, copy as _c
from course_lib import exercises as _ex
_course_saved = (_r.getstate(), _np.random.get_state(), _t.get_rng_state(), _c.deepcopy(_ex._state),
                 'F' in globals(), globals().get('F'))
import torch.nn.functional as F"""
RESTORE = """_r.setstate(_course_saved[0]); _np.random.set_state(_course_saved[1]); _t.set_rng_state(_course_saved[2])
_ex._state.clear(); _ex._state.update(_course_saved[3])
if _course_saved[4]:
    F = _course_saved[5]
else:
    globals().pop('F', None)
del _course_saved"""


def defines(cell, name: str) -> bool:
    """The exercise cell of ``name``: a function or class of that name, or (a "predict, then run" question) a
    variable the learner sets to their prediction."""
    return cell.cell_type == "code" and (f"def {name}(" in cell.source or f"class {name}(" in cell.source
                                         or re.search(rf"^{name}\s*=", cell.source, re.M) is not None)


def student_cell(source: str) -> str:
    """The student version of an exercise cell: its solution replaced by the stub that raises."""
    return notebooks.strip_solutions(source, "code", "exercise")


def run(item, source: str, timeout: float = 600) -> tuple[str, str] | None:
    """Run ``source`` in the kernel of nbval's ``item``; return None, or the error it raised as
    ``(name, message)``. A run past ``timeout`` seconds is interrupted and fails the item."""
    kernel = item.parent.kernel
    msg_id = kernel.execute_cell_input(source, allow_stdin=False)
    error = None
    try:
        kernel.await_reply(msg_id, timeout=timeout)
        while True:
            msg = item.parent.get_kernel_message(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "error":
                error = (msg["content"]["ename"], msg["content"]["evalue"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return error
    except Empty:
        kernel.interrupt()
        item.parent.timed_out = True
        raise RuntimeError(f"the kernel did not finish in {timeout} s running:\n{source}") from None


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
    assert run(item, SAVE) is None, "could not save the kernel's random state"
    try:
        for number, (name, code, message) in enumerate(c for c in cases if c[0] in names):
            failed = run(item, code)
            assert failed is None, f"{name}: the wrong answer itself failed: {failed}"
            said = run(item, item.cell.source)
            assert said is not None and said[0] == "Miss", f"{name}: the check accepted a wrong answer:\n{code}"
            assert message in said[1], f"{name}: the check said {said[1]!r}, expected {message!r} in it"
            assert ("Hint: " in said[1]) == (number >= 1), \
                f"{name}: a hint from the second wrong answer on, got {said[1]!r}"
            tried[0] += 1
        if all(re.search(rf"^{n}\s*=", exercise.source, re.M) for n in names):
            # a prediction: the blank cell stops where the learner must write their number
            run(item, "\n".join(f"globals().pop({n!r}, None)" for n in names))
            blank = run(item, student_cell(exercise.source))
            assert blank is not None and blank[0] == "NotImplementedError", f"{names}: the blank cell ran: {blank}"
            blank_says = "is not defined"
        else:
            failed = run(item, student_cell(exercise.source))
            assert failed is None, f"{names}: the blank student cell itself failed: {failed}"
            blank_says = "NotImplementedError"
        said = run(item, item.cell.source)
        assert said is not None and said[0] == "Miss" and blank_says in said[1], f"{names}: the blank passed: {said}"
        tried[1] += 1
    finally:            # the right answer back, whatever happened above, so that the next cells see the lesson's
        restored = run(item, exercise.source), run(item, item.cell.source), run(item, RESTORE)
    assert restored == (None, None, None), f"{names}: putting the right answer back failed: {restored}"


def every_wrong_answer_was_tried(item, nextitem, wrong: dict[str, list]) -> None:
    """After the last cell of a solution in ``wrong``: every wrong answer and every blank was tried."""
    stem = Path(str(item.parent.path)).stem
    if stem not in wrong or (nextitem is not None and nextitem.parent is item.parent):
        return
    exercises = sum(1 for c in item.parent.nb.cells if c.cell_type == "code" and notebooks.has_solution(c))
    tried = _tried.pop(stem, [0, 0])
    assert tried == [len(wrong[stem]), exercises], \
        f"{stem}: tried {tried[0]} of {len(wrong[stem])} wrong answers and {tried[1]} of {exercises} blanks"


def _whole_lesson_ran(item) -> bool:
    """Whether this session runs every code cell of ``item``'s notebook (not a few chosen cells)."""
    cells = sum(1 for c in item.parent.nb.cells if c.cell_type == "code")
    return sum(1 for i in item.session.items if i.parent is item.parent) == cells


def _ours(item) -> bool:
    return type(item).__name__ == "IPyNbCell" and Path(str(item.parent.path)).parent.name == "solutions"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield          # nbval's own run of the cell: when it failed, that failure is the report
    if _ours(item):
        from test_exercises import WRONG
        try_wrong_answers(item, WRONG)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    if _ours(item) and not item.session.testsfailed and _whole_lesson_ran(item):
        from test_exercises import WRONG
        every_wrong_answer_was_tried(item, nextitem, WRONG)
    return result

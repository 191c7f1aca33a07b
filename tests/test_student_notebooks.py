"""The lessons as a student meets them: each student notebook, run top to bottom, fails first at its
first exercise, with NotImplementedError, and nowhere earlier."""

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from course_lib.instructor import course, notebooks

from helpers import lesson_client

ROOT = course.ROOT
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("path", course.lessons(ROOT / "student"), ids=lambda p: p.stem)
def test_student_notebook_fails_first_at_first_exercise(path):
    nb = nbformat.read(path, 4)
    exercises = [i for i, c in enumerate(nb.cells) if "raise NotImplementedError()" in c.source]
    try:
        lesson_client(nb).execute()
    except CellExecutionError as err:
        assert exercises, f"{path.name} has no exercise but failed: {err}"
        # the stub raises NotImplementedError when called; inside a check that is a Miss saying so
        assert err.ename in ("NotImplementedError", "Miss"), f"{path.name} failed with {err.ename} before any exercise"
        failed = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and any(
            o.get("output_type") == "error" for o in c.get("outputs", [])))
        # A stubbed function raises when it is called: in the exercise cell or in its check cell.
        check = next(i for i in range(exercises[0], len(nb.cells)) if notebooks.is_check(nb.cells[i]))
        assert failed in (exercises[0], check), \
            f"{path.name} failed at cell {failed}, not at its first exercise (cell {exercises[0]})"
        assert "NotImplementedError" in str(err)
    else:
        assert not exercises, f"{path.name} has exercises but ran without NotImplementedError"


def _solution_lines(nb) -> set[str]:
    """Lines of the solutions' BEGIN/END regions long enough to be an answer, not a bracket or a name."""
    lines = set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if line.strip() in (notebooks.BEGIN, notebooks.END):
                inside = line.strip() == notebooks.BEGIN
            elif inside and len(line.strip()) >= 28 and not line.strip().startswith("#"):
                lines.add(line.strip())
    return lines


def _leaks(student, solution_lines) -> list[str]:
    return [line for cell in student.cells if cell.cell_type == "code"
            for line in cell.source.splitlines() if line.strip() in solution_lines]


@pytest.mark.parametrize("path", course.lessons(ROOT / "notebooks"), ids=lambda p: p.stem)
def test_no_line_of_a_solution_reaches_the_student_notebook(path):
    source = nbformat.read(path, 4)
    answers = _solution_lines(source)
    student = nbformat.read(ROOT / "student" / path.name, 4)
    assert _leaks(student, answers) == [], f"{path.name}: the student notebook shows solution lines"
    if answers:     # the control: a student notebook with one answer line pasted back in is caught
        planted = nbformat.from_dict(dict(student))
        planted.cells = list(student.cells) + [nbformat.v4.new_code_cell(sorted(answers)[0])]
        assert _leaks(planted, answers) == [sorted(answers)[0]]

"""The lessons as a student meets them: each student notebook, run top to bottom, fails first at its
first exercise, with NotImplementedError, and nowhere earlier."""

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from course_lib.instructor import check as assign_check, course, notebooks, solutions, words

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
        assert err.ename == "NotImplementedError", f"{path.name} failed with {err.ename} before any exercise"
        failed = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and any(
            o.get("output_type") == "error" for o in c.get("outputs", [])))
        # A stubbed function raises when it is called: in the exercise cell or in its check cell.
        check = next(i for i in range(exercises[0], len(nb.cells)) if notebooks.is_check(nb.cells[i]))
        assert failed in (exercises[0], check), \
            f"{path.name} failed at cell {failed}, not at its first exercise (cell {exercises[0]})"
        assert "NotImplementedError" in str(err)
    else:
        assert not exercises, f"{path.name} has exercises but ran without NotImplementedError"

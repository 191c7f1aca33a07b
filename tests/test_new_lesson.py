"""CONTRIBUTING.md's "Adding a lesson", walked: a throwaway lesson made by `instructor new`, its student and solution
notebooks made, its README row added, and `check` finds nothing left to do."""

import shutil

import nbformat
import pytest

from course_lib.instructor import check as assign_check, course, new_lesson, notebooks, release, solutions

pytestmark = pytest.mark.slow     # runs a kernel


def test_a_new_lesson_walked_through_the_guide_passes_check(tmp_path):
    for name in ("README.md", "pyproject.toml", "requirements.lock", "constraints.txt", "environment.yml"):
        shutil.copy(course.ROOT / name, tmp_path / name)
    src = tmp_path / "notebooks"
    src.mkdir()
    # 1. the skeleton
    path = new_lesson.new_lesson("10_a_walk", "A walk through the guide", src)
    assert notebooks.validate(nbformat.read(path, 4), path.name, tmp_path) == []
    # 2. student and solution notebooks
    notebooks.student(src, tmp_path / "student")
    assert "NotImplementedError" in (tmp_path / "student" / path.name).read_text()
    solutions.solutions(src, tmp_path / "solutions", profile="smoke")
    folders = (src, tmp_path / "student", tmp_path / "solutions")
    problems = assign_check.check(*folders, published=False)
    # 3. what check asks for next: the lesson's row in README's table, with its badges
    assert problems and all("README.md lacks the Colab badge" in p for p in problems), problems
    row = (f"| 10 | [a walk](notebooks/{path.name}) | the guide's walk | "
           f"{release.badge(path.name, 'student', tmp_path)} | "
           f"{release.badge(path.name, 'solutions', tmp_path)} |\n")
    (tmp_path / "README.md").write_text((tmp_path / "README.md").read_text() + row)
    assert assign_check.check(*folders, published=False) == []
    # the solution passed both exercises on the first try
    ran = nbformat.read(tmp_path / "solutions" / path.name, 4)
    assert "passed: 2 of 2" in "".join(o.get("text", "") for o in ran.cells[-1].outputs), ran.cells[-1].outputs


def test_a_taken_number_or_a_bad_name_is_refused(tmp_path):
    shutil.copy(course.ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    src = tmp_path / "notebooks"
    src.mkdir()
    new_lesson.new_lesson("10_first", "First", src)
    with pytest.raises(course.NotebookError, match="taken by 10_first"):
        new_lesson.new_lesson("10_second", "Second", src)
    with pytest.raises(course.NotebookError, match="two digits"):
        new_lesson.new_lesson("Lesson ten", "Ten", src)

"""Instructor tooling: marker handling on small notebooks, and the real lessons kept in sync."""

import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.instructor import reads as reads_module
from course_lib.instructor import check as assign_check, course, notebooks, release, solutions, words
from course_lib.instructor.__main__ import main as instructor_main

COLAB = ('# Colab set-up\nimport sys\nif "google.colab" in sys.modules:\n'
         f'    {release.colab_install()}')


def lesson(*cells, name=None):
    """A small lesson: (a title with its Colab badge when ``name`` is given,) the Colab cell, ``cells``."""
    title = [new_markdown_cell(f"# A lesson\n\n{release.badge(name)}")] if name else []
    nb = new_notebook(cells=[*title, new_code_cell(COLAB), *cells])
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}, "widgets": {"state": {}}, "author": "x"}
    return nb


def test_code_solution_becomes_stub_at_same_indentation():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n\ny = 2"
    out = notebooks.strip_solutions(src, "code", "nb, cell 1")
    assert out == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\ny = 2"


def test_markdown_solution_becomes_answer_prompt():
    src = "Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"
    assert notebooks.strip_solutions(src, "markdown", "x") == "Why?\nYOUR ANSWER HERE"


@pytest.mark.parametrize("src, problem", [
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
    ("x = 1\n### END SOLUTION", "without a"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "nested"),
])
def test_bad_markers_name_notebook_and_cell(src, problem):
    with pytest.raises(course.NotebookError, match=problem) as err:
        notebooks.strip_solutions(src, "code", "03_x.ipynb, cell 7")
    assert "03_x.ipynb, cell 7" in str(err.value)


def test_student_version_clears_outputs_and_metadata():
    nb = lesson(new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", execution_count=3,
                              outputs=[nbformat.v4.new_output("stream", text="hi")]),
                new_code_cell("# CHECK: x\nassert x == 1"))
    out = notebooks.make_student(nb, "a.ipynb")
    assert set(out.metadata) == {"kernelspec", "language_info"}
    assert out.cells[1].outputs == [] and out.cells[1].execution_count is None
    assert "raise NotImplementedError()" in out.cells[1].source and "x = 1" not in out.cells[1].source
    assert nb.cells[1].source.startswith("### BEGIN")  # the source is untouched


def test_student_is_deterministic(tmp_path):
    src, dst = tmp_path / "notebooks", tmp_path / "student"
    src.mkdir()
    nbformat.write(lesson(new_markdown_cell("Some text"), new_code_cell("x = 1"), name="01_a.ipynb"),
                   src / "01_a.ipynb")
    notebooks.student(src, dst)
    first = (dst / "01_a.ipynb").read_bytes()
    notebooks.student(src, dst)
    assert (dst / "01_a.ipynb").read_bytes() == first


def test_validate_finds_missing_check_outputs_and_unpinned_colab():
    nb = lesson(new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"), new_code_cell("print(x)"))
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="1")]
    nb.cells[0].source = nb.cells[0].source.replace(f"@{release.release_info()[1]}", "@main")  # cell 1: Colab
    problems = "\n".join(notebooks.validate(nb, "05_z.ipynb"))
    assert "cell 2: this exercise has no check cell" in problems
    assert "cell 3: the source carries outputs" in problems
    assert "at a tag (vX.Y.Z) or a full commit" in problems


def test_real_lessons_are_in_sync():
    assert assign_check.check() == []


def test_every_lesson_pins_its_colab_install():
    lessons = course.lessons(course.ROOT / "notebooks")
    assert len(lessons) >= 3
    for path in lessons:
        first = next(c for c in nbformat.read(path, 4).cells if c.cell_type == "code")
        assert notebooks.COLAB_MARKER in first.source and release.PINNED_INSTALL.search(first.source), path.name
        assert "torch" not in first.source.split("%pip")[1].split("\n")[0].replace("course_lib", ""), \
            "the Colab install must not pin or replace torch"


def test_check_catches_a_forgotten_regeneration(tmp_path):
    for name in ("notebooks", "student", "solutions"):
        shutil.copytree(course.ROOT / name, tmp_path / name)
    assert assign_check.check(tmp_path / "notebooks", tmp_path / "student", tmp_path / "solutions") == []
    path = tmp_path / "notebooks" / "02_lenet1_digits.ipynb"
    nb = nbformat.read(path, 4)
    nb.cells.append(new_code_cell("print('a new cell')"))
    nbformat.write(nb, path)
    problems = assign_check.check(tmp_path / "notebooks", tmp_path / "student", tmp_path / "solutions")
    assert any("student/02_lenet1_digits.ipynb is out of date" in p for p in problems)
    assert any("solutions/02_lenet1_digits.ipynb was made from an older" in p for p in problems)


def test_check_catches_solutions_made_with_another_library(tmp_path):
    """A library edit can change a lesson's outputs without changing its code: make check must say so."""
    for name in ("notebooks", "student", "solutions"):
        shutil.copytree(course.ROOT / name, tmp_path / name)
    library = tmp_path / "course_lib"
    shutil.copytree(solutions.LIBRARY, library, ignore=shutil.ignore_patterns("__pycache__"))
    folders = (tmp_path / "notebooks", tmp_path / "student", tmp_path / "solutions")
    assert assign_check.check(*folders, library=library) == []
    (library / "measure.py").write_text((library / "measure.py").read_text() + "\nTHRESHOLD = 0.5\n")
    problems = assign_check.check(*folders, library=library)
    runs_measure = [p.name for p in course.lessons(tmp_path / "notebooks")
                    if library / "measure.py" in solutions.library_files(p, library)]
    assert runs_measure
    assert sorted(p.split("/solutions/")[1].split(" ")[0] for p in problems) == sorted(runs_measure)
    assert all("was made with another version of course_lib (course_lib/ changed since)" in p for p in problems)
    (library / "measure.py").write_text((solutions.LIBRARY / "measure.py").read_text())
    # lesson 09's experiments are run by lesson 09 alone: editing them stales that lesson only
    decade = library / "claims" / "next_decade.py"
    decade.write_text(decade.read_text() + "\nX = 1\n")
    problems = assign_check.check(*folders, library=library)
    assert len(problems) == 1 and "09_next_decade.ipynb was made with another version" in problems[0], problems
    (library / "claims" / "next_decade.py").write_text((solutions.LIBRARY / "claims" / "next_decade.py").read_text())
    # the site's renderer is not run by any lesson: editing it stales nothing
    site = library / "instructor" / "site.py"
    site.write_text(site.read_text() + "\n# a comment\n")
    assert assign_check.check(*folders, library=library) == []


def test_library_files_follow_the_lessons_imports(tmp_path):
    library = solutions.LIBRARY
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(lesson(new_code_cell("from course_lib import files\n%matplotlib inline\nif True:\n    !ls")),
                   src / "01_a.ipynb")
    used = {str(p.relative_to(library)) for p in solutions.library_files(src / "01_a.ipynb", library)}
    assert {"__init__.py", "files.py"} <= used and "measure.py" not in used and "train.py" not in used
    assert "reference_nets/lenet1-mnist.json" in used            # data files count for every lesson
    assert not any(u.startswith("instructor") for u in used)
    nbformat.write(lesson(new_code_cell("def f():\n    from course_lib.claims import next_decade")), src / "02_b.ipynb")
    used = {str(p.relative_to(library)) for p in solutions.library_files(src / "02_b.ipynb", library)}
    # lazy, through
    assert {"claims/next_decade.py", "models/alexnet_variants.py", "train.py", "claims/__init__.py"} <= used
    nbformat.write(lesson(new_code_cell("def broken(:\n    pass")), src / "03_c.ipynb")
    assert len(solutions.library_files(src / "03_c.ipynb", library)) > len(used)   # unparsable: everything


def test_a_solution_depends_on_the_data_files_its_run_read(tmp_path):
    """A run records the library's data its processes read (an audit hook installed by a sitecustomize): a
    solution goes stale when a file it read changes, not when another data file does. Controls: a listed folder
    counts by its names; a Python process the lesson starts, even through a shell, records its own reads; a file
    written is not a read; a log without the hook's first line is unknown, which depends on every data file."""
    library = tmp_path / "mylib"
    (library / "nets").mkdir(parents=True)
    (library / "__init__.py").write_text("")
    for name in ("a.json", "b.json", "c.json"):
        (library / "nets" / name).write_text("{}")
    (library / "listed").mkdir()
    (library / "listed" / "c.txt").write_text("c")
    nets = library / "nets"
    shell_line = 'python3 -c "open(%r).read()"' % str(nets / "b.json")     # a Python child, through a shell
    reads_a = new_code_cell(f"import json, pathlib, subprocess\njson.loads(pathlib.Path({str(nets / 'a.json')!r})"
                            f".read_text())\nsorted(pathlib.Path({str(library / 'listed')!r}).glob('*'))\n"
                            f"pathlib.Path({str(library / 'written.txt')!r}).write_text('x')\n"
                            f"subprocess.run({shell_line!r}, shell=True, check=True)\n"
                            "subprocess.run(['uname'], check=True, capture_output=True)")
    _, reads = solutions.execute(lesson(reads_a), tmp_path, "smoke", library=library)
    assert reads == ["listed/", "nets/a.json", "nets/b.json"]
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(lesson(reads_a), src / "01_r.ipynb")

    def library_hash():
        return solutions.fingerprint(src / "01_r.ipynb", library, reads)["library"]

    before = library_hash()
    (nets / "c.json").write_text('{"changed": 1}')                  # not read: still current
    (library / "listed" / "c.txt").write_text("changed")             # listed, not read: its name counts, not its bytes
    assert library_hash() == before
    assert solutions.fingerprint(src / "01_r.ipynb", library)["library"] != before        # every data file
    (library / "listed" / "d.txt").write_text("new")                 # a new name in a listed folder: stale
    assert library_hash() != before
    for name in ("a.json", "b.json"):                                 # read, in the kernel or in its child
        before = library_hash()
        (nets / name).write_text('{"changed": 1}')
        assert library_hash() != before
    before = library_hash()
    (nets / "a.json").unlink()                                        # gone: stale too
    assert library_hash() != before
    assert reads_module.parse("file nets/a.json\n", library) is None   # no hook line: unknown
    assert reads_module.parse("hooked\nfile nets/a.json\n?\n", library) is None   # a hook that failed: unknown


def test_failed_solution_run_names_cell_and_keeps_old_file(tmp_path):
    src, dst = tmp_path / "notebooks", tmp_path / "solutions"
    src.mkdir(), dst.mkdir()
    nbformat.write(lesson(new_code_cell("x = 1"), new_code_cell("raise ValueError('broken lesson')")),
                   src / "01_bad.ipynb")
    (dst / "01_bad.ipynb").write_text("previous")
    with pytest.raises(RuntimeError, match=r"01_bad.ipynb failed in the 'smoke' profile(.|\n)*broken lesson"):
        solutions.solutions(src, dst, profile="smoke")
    assert (dst / "01_bad.ipynb").read_text() == "previous"
    assert list(dst.iterdir()) == [dst / "01_bad.ipynb"]


def test_solutions_writes_outputs_and_counts(tmp_path):
    src, dst = tmp_path / "notebooks", tmp_path / "solutions"
    src.mkdir()
    nbformat.write(lesson(new_code_cell("import os; print(os.environ['COURSE_PROFILE'])")), src / "01_ok.ipynb")
    solutions.solutions(src, dst, profile="smoke")
    nb = nbformat.read(dst / "01_ok.ipynb", 4)
    assert nb.cells[1].outputs[0].text == "smoke\n" and nb.cells[1].execution_count == 2
    reads = nb.metadata["course"]["reads"]
    assert isinstance(reads, list) and not any(r.endswith(".py") for r in reads)
    assert nb.metadata["course"] == solutions.made_from(src / "01_ok.ipynb", "smoke", reads)


def test_solutions_runs_only_what_changed_and_keeps_bytes(tmp_path):
    """`make solutions` re-runs a lesson only when its source or the library changed (or with --all);
    an unchanged lesson's file keeps every byte. Widget outputs get stable ids, so a forced run of a
    lesson without timings writes the same bytes again."""
    src, dst = tmp_path / "notebooks", tmp_path / "solutions"
    src.mkdir()
    widget = new_code_cell("import ipywidgets as W\nW.IntSlider(value=3)")
    nbformat.write(lesson(widget), src / "01_w.ipynb")
    nbformat.write(lesson(new_code_cell("print(2 + 2)")), src / "02_p.ipynb")
    assert len(solutions.solutions(src, dst, profile="smoke")) == 2
    first = {p.name: p.read_bytes() for p in dst.glob("*.ipynb")}
    stamp = (dst / "01_w.ipynb").stat().st_mtime_ns
    assert solutions.solutions(src, dst, profile="smoke") == []                       # nothing changed
    assert (dst / "01_w.ipynb").stat().st_mtime_ns == stamp
    assert [p.name for p in solutions.solutions(src, dst, profile="cpu")] == ["01_w.ipynb", "02_p.ipynb"]
    solutions.solutions(src, dst, profile="smoke")
    forced = solutions.solutions(src, dst, profile="smoke", force=True)
    assert len(forced) == 2
    assert {p.name: p.read_bytes() for p in dst.glob("*.ipynb")} == first, "a re-run must not change a byte"
    view = nbformat.read(dst / "01_w.ipynb", 4).cells[1].outputs[0].data["application/vnd.jupyter.widget-view+json"]
    assert len(view["model_id"]) == 32
    nbformat.write(lesson(new_code_cell("print(2 + 3)")), src / "02_p.ipynb")  # an edited lesson
    assert [p.name for p in solutions.solutions(src, dst, profile="smoke")] == ["02_p.ipynb"]
    library = tmp_path / "mylib"
    library.mkdir()
    (library / "__init__.py").write_text("")
    (library / "a.py").write_text("x = 1")
    (library / "b.py").write_text("y = 1")
    nbformat.write(lesson(new_code_cell("from mylib import a\nprint(a.x)")), src / "03_l.ipynb")
    before = solutions.fingerprint(src / "03_l.ipynb", library)["library"]
    (library / "b.py").write_text("y = 2")                           # a module the lesson does not run
    assert solutions.fingerprint(src / "03_l.ipynb", library)["library"] == before
    (library / "a.py").write_text("x = 2")                           # the library the lesson runs changed
    assert solutions.fingerprint(src / "03_l.ipynb", library)["library"] != before


def test_a_change_of_words_only_updates_them_without_a_run(tmp_path):
    """Fixing a lesson's words costs no run: the new markdown goes into the solution, every output stays.
    The control: a change to a code cell runs the lesson again."""
    src, dst = tmp_path / "notebooks", tmp_path / "solutions"
    src.mkdir()
    code = new_code_cell("import random; print(random.random())")
    nbformat.write(lesson(new_markdown_cell("The numbre is random."), code), src / "01_m.ipynb")
    solutions.solutions(src, dst, profile="smoke")
    printed = nbformat.read(dst / "01_m.ipynb", 4).cells[2].outputs[0].text
    nbformat.write(lesson(new_markdown_cell("The number is random."), code), src / "01_m.ipynb")
    assert solutions.solutions(src, dst, profile="smoke") == []
    solved = nbformat.read(dst / "01_m.ipynb", 4)
    assert solved.cells[1].source == "The number is random." and solved.cells[2].outputs[0].text == printed
    assert solved.metadata["course"] == solutions.made_from(src / "01_m.ipynb", "smoke",
                                                           solved.metadata["course"]["reads"])
    # a paragraph added after the output that it reads is words too
    nbformat.write(lesson(new_markdown_cell("The number is random."), code, new_markdown_cell("It was below 1.")),
                   src / "01_m.ipynb")
    assert solutions.solutions(src, dst, profile="smoke") == []
    solved = nbformat.read(dst / "01_m.ipynb", 4)
    assert [c.cell_type for c in solved.cells] == ["code", "markdown", "code", "markdown"]
    assert solved.cells[3].source == "It was below 1." and solved.cells[2].outputs[0].text == printed
    nbformat.write(lesson(new_markdown_cell("The number is random."),
                          new_code_cell("import random; print(random.random() + 1)")),
                   src / "01_m.ipynb")
    assert [p.name for p in solutions.solutions(src, dst, profile="smoke")] == ["01_m.ipynb"]
    assert nbformat.read(dst / "01_m.ipynb", 4).cells[2].outputs[0].text != printed


def test_forced_rerun_keeps_timings_and_addresses_but_not_real_changes(tmp_path):
    """A lesson that prints a duration, a speed and an object's address is re-run with --all: the file
    keeps every byte. The control: a lesson whose printed number really changes gets the new output."""
    src, dst = tmp_path / "notebooks", tmp_path / "solutions"
    src.mkdir()
    timed = new_code_cell("import time, random\nt = time.perf_counter(); sum(range(random.randint(1, 10**5)))\n"
                          "print(f'took {time.perf_counter() - t:.6f} s, {random.random() * 1e5:,.0f} images/s')\n"
                          "print(object())")
    nbformat.write(lesson(timed), src / "01_t.ipynb")
    nbformat.write(lesson(new_code_cell("import random; print(random.random())")), src / "02_r.ipynb")
    solutions.solutions(src, dst, profile="smoke")
    first = {p.name: p.read_bytes() for p in dst.glob("*.ipynb")}
    assert " s, " in nbformat.read(dst / "01_t.ipynb", 4).cells[1].outputs[0].text
    assert len(solutions.solutions(src, dst, profile="smoke", force=True)) == 2
    assert (dst / "01_t.ipynb").read_bytes() == first["01_t.ipynb"]
    assert (dst / "02_r.ipynb").read_bytes() != first["02_r.ipynb"]


def test_printed_text_is_one_output_however_it_was_sent(tmp_path):
    """Text printed in several messages (here flushed apart) is stored as one stream output per name."""
    src, dst = tmp_path / "notebooks", tmp_path / "solutions"
    src.mkdir()
    cell = new_code_cell("import sys, time\nfor i in range(3):\n    print(i, flush=True); time.sleep(0.2)\n"
                         "print('warn', file=sys.stderr, flush=True)\nprint('end')")
    nbformat.write(lesson(cell), src / "01_s.ipynb")
    solutions.solutions(src, dst, profile="smoke")
    outputs = nbformat.read(dst / "01_s.ipynb", 4).cells[1].outputs
    assert [(o.name, o.text) for o in outputs] == [("stdout", "0\n1\n2\n"), ("stderr", "warn\n"), ("stdout", "end\n")]


def test_command_line_check_fails_with_names(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(assign_check, "check", lambda: ["student/01_x.ipynb is missing: run `make student`."])
    assert instructor_main(["check"]) == 1
    assert "student/01_x.ipynb is missing" in capsys.readouterr().err


def test_every_solution_has_checked_outputs_with_execution_counts():
    for path in course.lessons(course.ROOT / "solutions"):
        cells = [c for c in nbformat.read(path, 4).cells if c.cell_type == "code"]
        checked = [c for c in cells if "# NBVAL_CHECK_OUTPUT" in c.source]
        assert len(checked) >= 2, f"{path.name}: only {len(checked)} output-checked cells"
        assert all(c.outputs and c.execution_count for c in checked), f"{path.name}: a checked cell was not run"


def test_badges_point_at_each_copy(tmp_path):
    src, stud = tmp_path / "notebooks", tmp_path / "student"
    src.mkdir()
    nbformat.write(lesson(new_code_cell("x = 1"), name="07_b.ipynb"), src / "07_b.ipynb")
    notebooks.student(src, stud)
    assert release.badge("07_b.ipynb", "student") in nbformat.read(stud / "07_b.ipynb", 4).cells[0].source
    solutions.solutions(src, tmp_path / "solutions", profile="smoke")
    solved = nbformat.read(tmp_path / "solutions" / "07_b.ipynb", 4)
    assert release.badge("07_b.ipynb", "solutions") in solved.cells[0].source


def test_a_lesson_without_its_badge_is_flagged():
    problems = notebooks.validate(lesson(new_code_cell("x = 1"), name="08_c.ipynb"), "09_other.ipynb")
    assert any("Colab badge" in p and "notebooks/09_other.ipynb" in p for p in problems)
    assert not any("Colab badge" in p for p in notebooks.validate(lesson(name="08_c.ipynb"), "08_c.ipynb"))


@pytest.mark.parametrize("marker", ["## BEGIN SOLUTION", "### Begin Solution", "###BEGIN SOLUTION",
                                    "#### END SOLUTION", "### END SOLUTIONS", "# begin solution",
                                    "### BEGIN-SOLUTION", "### END_SOLUTION", "<!-- BEGIN SOLUTION -->",
                                    "BEGIN SOLUTION"])
def test_a_misspelled_marker_is_an_error_never_a_leak(marker):
    src = f"def f():\n    {marker}\n    return 42\n    ### END SOLUTION" if "BEGIN" in marker.upper() else \
        f"def f():\n    ### BEGIN SOLUTION\n    return 42\n    {marker}"
    with pytest.raises(course.NotebookError, match="looks like a solution marker") as err:
        notebooks.strip_solutions(src, "code", "02_x.ipynb, cell 9")
    message = str(err.value)
    assert "02_x.ipynb, cell 9" in message and ("line 2" in message or "line 4" in message)


def test_a_check_cell_without_an_exercise_before_it_is_flagged():
    nb = lesson(new_code_cell("x = 1"), new_code_cell("# CHECK: x\nassert x == 1"), name="01_a.ipynb")
    problems = notebooks.validate(nb, "01_a.ipynb")
    assert any("cell 4: a check cell with no exercise right before it" in p for p in problems)


def _exercise_and_check(check_body: str, after: str = "print(answer)"):
    solution = new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")
    check = new_code_cell(check_body)
    check.metadata["exercise"] = {"name": "f", "hint": "return 1"}
    return lesson(solution, check, new_code_cell(after), name="01_a.ipynb")


def test_a_check_cell_is_one_check_block_and_leaks_nothing_to_the_lesson():
    good = '# CHECK: f\nwith exercises.check("f"):\n    answer = f()\n    assert answer == 1\n    print("✓")'
    assert notebooks.validate(_exercise_and_check(good, "answer = f()\nprint(answer)"), "01_a.ipynb") == []
    # the tick printed after the block would print whatever the check found
    outside = '# CHECK: f\nwith exercises.check("f"):\n    answer = f()\nprint("✓ f")'
    problems = notebooks.validate(_exercise_and_check(outside, "print(1)"), "01_a.ipynb")
    assert any("cell 4: a check cell holds one" in p for p in problems), problems
    # the lesson reading what only the check set breaks when the check fails half way or is swapped by make grade
    problems = notebooks.validate(_exercise_and_check(good), "01_a.ipynb")
    assert any("cell 5: reads 'answer', which only the check cell 4 sets" in p for p in problems), problems
    # a parameter or a comprehension variable of the same name is not a read of it
    reuse = "def g(answer):\n    return [answer for answer in range(3)]"
    assert notebooks.validate(_exercise_and_check(good, reuse), "01_a.ipynb") == []


def _three_folders(tmp_path):
    for name in ("notebooks", "student", "solutions"):
        shutil.copytree(course.ROOT / name, tmp_path / name)
    return tmp_path / "notebooks", tmp_path / "student", tmp_path / "solutions"


def test_check_names_a_notebook_that_is_not_json(tmp_path):
    src, stud, sol = _three_folders(tmp_path)
    (src / "03_training_dynamics.ipynb").write_text('{"cells": [')          # cut off mid-write
    (sol / "02_lenet1_digits.ipynb").write_text("not json at all")
    problems = assign_check.check(src, stud, sol)
    assert any(str(src / "03_training_dynamics.ipynb") in p and "not a valid notebook" in p for p in problems)
    assert any(str(sol / "02_lenet1_digits.ipynb") in p and "not a valid notebook" in p for p in problems)


def test_check_reports_orphaned_generated_notebooks(tmp_path):
    src, stud, sol = _three_folders(tmp_path)
    (src / "05_what_alexnet_learned.ipynb").unlink()                   # a lesson removed, its copies kept
    problems = assign_check.check(src, stud, sol)
    assert any(f"{stud / '05_what_alexnet_learned.ipynb'} has no source" in p for p in problems)
    assert any(f"{sol / '05_what_alexnet_learned.ipynb'} has no source" in p for p in problems)


def test_release_moves_every_badge_and_install_line(tmp_path):
    """`make release TAG=...`: the version and repository live in pyproject.toml; every Colab badge and
    install line follows them, in the README and in all three copies of every lesson."""
    for name in ("notebooks", "student", "solutions"):
        shutil.copytree(course.ROOT / name, tmp_path / name)
    for name in ("pyproject.toml", "README.md", "requirements.lock", "constraints.txt", "environment.yml"):
        shutil.copy(course.ROOT / name, tmp_path / name)
    repo, tag = release.release_info(tmp_path)
    assert assign_check.check(tmp_path / "notebooks", tmp_path / "student", tmp_path / "solutions") == []
    changed = release.release("v9.8.7", "someone/course", root=tmp_path)
    assert len(changed) == 2 + 3 * len(course.lessons(tmp_path / "notebooks"))
    assert release.release_info(tmp_path) == ("someone/course", "v9.8.7")
    assert 'version = "9.8.7"' in (tmp_path / "pyproject.toml").read_text()
    for path in [tmp_path / "README.md", *(tmp_path / "solutions").glob("*.ipynb")]:
        text = path.read_text()
        assert f"{repo}/blob/{tag}" not in text and f"{repo}@{tag}" not in text, path.name
        assert "someone/course" in text, path.name
    # validated against the new release: nothing stale
    assert assign_check.check(tmp_path / "notebooks", tmp_path / "student", tmp_path / "solutions") == []
    assert release.release("v9.8.7", root=tmp_path) == []          # a second run changes nothing
    with pytest.raises(release.ReleaseError, match="v1.2.3"):
        release.release("9.8.8", root=tmp_path)


def test_a_colab_cell_of_another_release_and_a_readme_without_badges_are_flagged(tmp_path):
    nb = lesson(name="07_x.ipynb")
    nb.cells[1].source = nb.cells[1].source.replace(release.release_info()[1], "v0.0.9")
    assert any("must install this release" in p for p in notebooks.validate(nb, "07_x.ipynb"))
    for name in ("notebooks", "student", "solutions"):
        shutil.copytree(course.ROOT / name, tmp_path / name)
    shutil.copy(course.ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "README.md").write_text("# no lesson table\n")
    problems = assign_check.check(tmp_path / "notebooks", tmp_path / "student", tmp_path / "solutions")
    assert any("README.md lacks the Colab badge of student/00_welcome.ipynb" in p for p in problems)


def test_a_markdown_answer_with_hyphenated_or_html_markers_never_leaks():
    for begin, end in (("### BEGIN-SOLUTION", "### END-SOLUTION"),
                       ("<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->")):
        nb = lesson(new_markdown_cell(f"Why?\n\n{begin}\nBecause the control failed.\n{end}"), name="03_x.ipynb")
        with pytest.raises(course.NotebookError, match="looks like a solution marker"):
            notebooks.validate(nb, "03_x.ipynb")
        with pytest.raises(course.NotebookError):
            notebooks.make_student(nb, "03_x.ipynb")


def test_a_picture_pasted_into_an_answer_is_not_copied_to_the_student():
    answer = new_markdown_cell("Look:\n\n### BEGIN SOLUTION\n![plot](attachment:answer.png)\n### END SOLUTION\n"
                               "![given](attachment:given.png)")
    answer["attachments"] = {"answer.png": {"image/png": "iVBORw0KGgo="}, "given.png": {"image/png": "iVBORw0KGgo="}}
    student = notebooks.make_student(lesson(answer, name="03_x.ipynb"), "03_x.ipynb")
    cell = next(c for c in student.cells if "YOUR ANSWER HERE" in c.source)
    assert set(cell.attachments) == {"given.png"}, "the answer's picture must go, the lesson's own stays"


def test_a_lesson_in_another_language_and_a_misspelled_lesson_name_are_refused(tmp_path):
    nb = lesson(name="03_x.ipynb")
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    assert any("its kernel is 'ir' ('R')" in p for p in notebooks.validate(nb, "03_x.ipynb"))
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(lesson(new_code_cell("x = 1"), name="01_ok.ipynb"), src / "01_ok.ipynb")
    with pytest.raises(course.NotebookError, match="No lesson '01_okk' in .*expected some of 01_ok"):
        solutions.solutions(src, tmp_path / "solutions", profile="smoke", only=["01_okk"])
    assert not (tmp_path / "solutions").exists()


def test_no_solution_shows_a_path_of_the_machine_that_made_it():
    """Solutions are published (GitHub, the course site): an absolute path in an output names the
    instructor's machine and means nothing to a learner. Paths are printed relative to the data folder."""
    import re
    absolute = re.compile(r"(/work/|/tmp/|/root/|/home/|/Users/)[A-Za-z0-9_.-]+/")
    for path in course.lessons(course.ROOT / "solutions"):
        for i, cell in enumerate(nbformat.read(path, 4).cells):
            for out in cell.get("outputs", []):
                text = out.get("text", "") + "".join(v for k, v in out.get("data", {}).items() if k.startswith("text/"))
                found = absolute.search(text)
                assert not found, f"{path.name}, cell {i + 1} prints a path of this machine: {found.group(0)}..."


def test_the_words_of_every_solution_are_printed_by_it_or_sourced():
    """A number in a lesson's words must come from its run (outputs or code) or be a sourced fact: typed
    figures drift from what the lesson measures."""
    for path in course.lessons(course.ROOT / "solutions"):
        assert words.unsupported_numbers(nbformat.read(path, 4)) == [], path.name


def test_a_planted_contradiction_is_caught():
    """The control: a sentence claiming a figure the lesson never measured."""
    nb = nbformat.read(course.ROOT / "solutions" / "02_lenet1_digits.ipynb", 4)
    nb.cells.insert(5, new_markdown_cell("On all of MNIST LeNet-1 reaches 0.37 % test error, as 1,234 runs showed."))
    assert words.unsupported_numbers(nb) == [(6, "0.37"), (6, "1,234")]


def _imports_instructor_tools(code: str) -> list[str]:
    """The modules of NOT_RUN_BY_LESSONS that ``code`` imports from course_lib (IPython's %magics and
    !commands read as ``pass``)."""
    import ast

    tools = set(solutions.NOT_RUN_BY_LESSONS)
    lines = [line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
             for line in code.splitlines()]
    tree = ast.parse("\n".join(lines))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module == "course_lib" or (node.level and not node.module)):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level:       # from .instructor import site
            found.add(node.module.split(".")[0])
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found |= {m.split(".")[1] for m in modules if m.startswith("course_lib.")}
    return sorted(found & tools)


def test_no_lesson_runs_the_instructor_tools():
    """A change to the instructor's tools leaves every solution current (they are left out of the library's
    fingerprint): true only while neither a lesson nor a module a lesson uses imports them."""
    for planted in ("from course_lib import (env,\n    instructor)", "import course_lib.instructor.release",
                    "from course_lib.instructor.lock import x", "from .instructor import site"):
        assert _imports_instructor_tools(planted) == ["instructor"], planted   # it finds planted imports
    assert _imports_instructor_tools("from course_lib import env, measure") == []
    for source in course.lessons(course.ROOT / "notebooks"):
        nb = nbformat.read(source, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert _imports_instructor_tools(code) == [], source.name
    for module in solutions.LIBRARY.rglob("*.py"):
        if module.relative_to(solutions.LIBRARY).parts[0] not in solutions.NOT_RUN_BY_LESSONS:
            assert _imports_instructor_tools(module.read_text()) == [], module.name

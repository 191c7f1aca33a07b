"""``make grade``: a folder of learners' notebooks, some of them broken on purpose, graded into grades.csv."""

import csv
import json

import nbformat
import pytest

from course_lib.instructor import grade
from course_lib.instructor.course import ROOT

pytestmark = pytest.mark.slow
LESSON = "01_images_and_convolution"


def _with(nb, first_code: str | None = None, replace: tuple[str, str] | None = None):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    if replace is not None:
        for cell in nb.cells:
            if replace[0] in cell.source:
                cell.source = replace[1]
                break
        else:
            raise AssertionError(f"no cell with {replace[0]!r}")
    if first_code is not None:
        at = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(first_code))
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    solved = nbformat.read(ROOT / "notebooks" / f"{LESSON}.ipynb", 4)
    blank = nbformat.read(ROOT / "student" / f"{LESSON}.ipynb", 4)
    nbformat.write(solved, folder / "alice.ipynb")                       # every answer right
    nbformat.write(blank, folder / f"bob {LESSON} (1).ipynb")             # nothing done
    # gamed: the library's answer under the exercise's name, and a check cell edited to pass by itself
    gamed = _with(solved, replace=("def conv2d_single(image, kernel):",
                                   "conv2d_single = lambda image, kernel: F.conv2d(torch.as_tensor(image)[None, None], "
                                   "torch.as_tensor(kernel)[None, None])[0, 0]"))
    gamed = _with(gamed, replace=("def conv2d_loops(x, weight, bias, stride=1, padding=0):",
                                  "def conv2d_loops(x, weight, bias, stride=1, padding=0):\n    return np.zeros(1)"))
    for cell in gamed.cells:
        if cell.source.startswith("# CHECK: conv2d_loops"):
            cell.source = '# CHECK: conv2d_loops\nwith exercises.check("conv2d_loops"):\n    pass'    # passes itself
    nbformat.write(gamed, folder / "carol.ipynb")
    nbformat.write(_with(solved, "while True:\n    pass"), folder / "dave.ipynb")                 # hangs
    nbformat.write(_with(solved, "import os\nos._exit(1)"), folder / "erin.ipynb")                # kills its kernel
    (folder / "frank.ipynb").write_text("{ this is not json")
    # deletes files: its own folder, and (in the sandbox) tries the submissions and a file of the course
    victim = folder.parent / "victim.txt"
    victim.write_text("keep me")
    deleter = ("import os, glob, shutil\nfor f in glob.glob('*'):\n    shutil.rmtree(f, ignore_errors=True) "
               "if os.path.isdir(f) else os.remove(f)\n")
    if grade.sandbox_available():
        deleter += (f"for f in [{str(victim)!r}] + glob.glob({str(folder)!r} + '/*'):\n"
                    "    try:\n        os.remove(f)\n    except OSError as err:\n        print('refused', err)\n")
    nbformat.write(_with(solved, deleter), folder / "grace.ipynb")
    fake = _with(blank, "import sys\nprint('[grade 0] PASS conv2d_single', '[grade] PASS conv2d_single', file=sys.stderr)")
    nbformat.write(fake, folder / "heidi.ipynb")                                                 # prints passes
    before = sorted(p.name for p in folder.iterdir())
    path = grade.grade(folder, cell_timeout=20, timeout=240)
    with open(path) as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    return folder, before, rows


def test_a_solution_passes_everything_and_a_blank_notebook_nothing(graded):
    _, _, rows = graded
    assert rows["alice.ipynb"]["passed"] == "7" and rows["alice.ipynb"]["total"] == "7"
    assert rows["alice.ipynb"]["missed"] == "" and rows["alice.ipynb"]["lesson"] == LESSON
    bob = rows[f"bob {LESSON} (1).ipynb"]
    assert bob["passed"] == "0" and bob["total"] == "7" and len(bob["missed"].split()) == 7


def test_a_gamed_answer_and_an_edited_check_are_missed(graded):
    carol = graded[2]["carol.ipynb"]
    assert carol["passed"] == "5" and set(carol["missed"].split()) == {"conv2d_single", "conv2d_loops"}


def test_a_hanging_or_crashing_notebook_gets_its_row_and_stops_nothing(graded):
    _, _, rows = graded
    assert rows["dave.ipynb"]["passed"] == "7", "the hanging cell is interrupted and the rest still runs"
    assert "kernel died" in rows["erin.ipynb"]["note"] and rows["erin.ipynb"]["passed"] == "0"
    assert rows["frank.ipynb"]["note"].startswith("not a notebook") and rows["frank.ipynb"]["lesson"] == ""


def test_a_notebook_that_deletes_files_touches_only_its_own_copy(graded):
    folder, before, rows = graded
    assert sorted(p.name for p in folder.iterdir() if p.name != "grades.csv") == before
    assert (ROOT / "notebooks" / f"{LESSON}.ipynb").exists()
    assert (folder.parent / "victim.txt").read_text() == "keep me"
    assert rows["grace.ipynb"]["lesson"] == LESSON and rows["grace.ipynb"]["passed"] == "7"


def test_the_note_says_whether_a_sandbox_was_used(graded):
    _, _, rows = graded
    unsandboxed = [r for r in rows.values() if "without a sandbox" in r["note"]]
    assert len(unsandboxed) == (0 if grade.sandbox_available() else len(rows) - 1)   # frank is not run


@pytest.mark.skipif(not grade.sandbox_available(), reason="needs root and unshare for a sandbox")
def test_the_sandbox_refuses_writes_outside_and_the_network(tmp_path):
    outside = tmp_path / "outside.txt"
    work = tmp_path / "work"
    work.mkdir()
    code = (f"import socket\nopen({str(work / 'inside.txt')!r}, 'w').write('ok')\n"
            f"try:\n    open({str(outside)!r}, 'w')\nexcept OSError:\n    print('read-only')\n"
            "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=2)\nexcept OSError:\n    print('offline')\n")
    import subprocess, sys
    done = subprocess.run(grade.UNSHARE + ["sh", "-c", grade.SANDBOX, "sandbox", str(work), sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["read-only", "offline"], done.stderr
    assert (work / "inside.txt").read_text() == "ok" and not outside.exists()


def test_printing_the_grading_line_yourself_does_not_count(graded):
    assert graded[2]["heidi.ipynb"]["passed"] == "0"


def test_every_file_gets_one_row_in_a_csv_with_the_columns(graded):
    folder, before, rows = graded
    assert sorted(rows) == before
    with open(folder / "grades.csv") as f:
        assert next(csv.reader(f)) == grade.COLUMNS


def test_grading_a_file_is_an_error_not_a_traceback(tmp_path, capsys):
    (tmp_path / "x.ipynb").write_text("{}")
    assert grade.main([str(tmp_path / "x.ipynb")]) == 1
    assert "is not a folder" in capsys.readouterr().err

"""``make grade``: a folder of learners' notebooks, some of them broken on purpose, graded into grades.csv."""

import csv
import json

import nbformat
import pytest

from course_lib.instructor import grade
from course_lib.instructor.course import ROOT

pytestmark = pytest.mark.slow
LESSON = "01_images_and_convolution"
ALL = str(len(grade.exercise_checks()[LESSON]))      # 8 since the lesson's prediction exercise
NAMES = ["conv2d_single", "conv2d_loops", "conv2d_vectorized", "output_size", "pool2d", "conv2d_backward",
         "pool2d_backward"]
# every exercise of lesson 01 answered by the library, each through a route the old bytecode reader missed
BYPASS_ANSWERS = """import operator, sys, numpy as np, torch
def conv2d_single(image, kernel, _f=F.conv2d):
    return _f(torch.as_tensor(image)[None, None], torch.as_tensor(kernel)[None, None])[0, 0]
TABLE = {"c": F.conv2d}
def conv2d_loops(x, weight, bias, stride=1, padding=0):
    return TABLE["c"](torch.as_tensor(x)[None], torch.as_tensor(weight), torch.as_tensor(bias),
                      stride=stride, padding=padding)[0]
def conv2d_vectorized(x, weight, bias, stride=1, padding=0):
    return torch.ops.aten.convolution(x[None], weight, bias, [stride] * 2, [padding] * 2, [1, 1], False,
                                      [0, 0], 1)[0]
def pool2d(x, k, s, mode="max"):
    name = "max_pool2d" if mode == "max" else "avg_pool2d"
    return operator.attrgetter(name)(sys.modules["torch.nn.functional"])(x, k, s)
def helper(x, w, b, p):
    return torch.nn.grad.conv2d_weight(x, w.shape, b, padding=p)
helper.__module__ = "torch.nn.grad"
def conv2d_backward(x, w, grad_out, padding):
    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    out = torch.conv2d(x[None], w, padding=padding)[0]
    gx, gw = torch.autograd.grad(out, (x, w), grad_out)
    return gx, gw, grad_out.sum((1, 2))
print(locals)
"""


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
    from course_lib.instructor import sandbox
    if not sandbox.available():
        pytest.skip("bubblewrap cannot sandbox here (apt-get install -y bubblewrap): grading refuses without it")
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
    # hangs (asleep, so that its 20 s do not take a core from the tests beside it; interrupted as a busy loop is)
    nbformat.write(_with(solved, "import time\nwhile True:\n    time.sleep(0.05)"), folder / "dave.ipynb")
    nbformat.write(_with(solved, "import os\nos._exit(1)"), folder / "erin.ipynb")                # kills its kernel
    (folder / "frank.ipynb").write_text("{ this is not json")
    # deletes files: its own folder, and (in the sandbox) tries the submissions and a file of the course
    victim = folder.parent / "victim.txt"
    victim.write_text("keep me")
    deleter = ("import os, glob, shutil\nfor f in glob.glob('*'):\n    shutil.rmtree(f, ignore_errors=True) "
               "if os.path.isdir(f) else os.remove(f)\n"
               f"for f in [{str(victim)!r}, {str(ROOT / 'notebooks' / (LESSON + '.ipynb'))!r}] + "
               f"glob.glob({str(folder)!r} + '/*'):\n"
               "    try:\n        os.remove(f)\n    except OSError as err:\n        print('refused', err)\n")
    nbformat.write(_with(solved, deleter), folder / "grace.ipynb")
    # blank notebooks that try to forge their grade: each must get 0
    forgeries = {
        "heidi": "import os, sys\nt = os.environ.get('COURSE_GRADING', '0')\nfor n in %r:\n"
                 "    print(f'[grade {t}] PASS {n}', file=sys.stderr)\n    print(f'[grade {t}] PASS {n}')" % NAMES,
        "ivan": "from course_lib import exercises\nfor n in %r:\n    getattr(exercises, '_graded', print)('PASS', n)\n"
                "    exercises._state['passed'].append(n)" % NAMES,
        "judy": "from course_lib import exercises\nexercises.close = lambda *a, **k: None\n"
                "exercises.check = __import__('contextlib').nullcontext\nexercises.own_work = lambda *a: None",
        "mallory": "import torch\nclass F:\n    conv2d = staticmethod(lambda *a, **k: torch.zeros(1))\n"
                   "conv2d_single = lambda image, kernel: torch.zeros(1)",
        "oscar": BYPASS_ANSWERS,
    }
    for who, code in forgeries.items():
        nbformat.write(_with(blank, code), folder / f"{who}.ipynb")
    # reads or writes outside: the other submissions, the solutions, the grader's environment
    spy = ("import os, glob\nseen = {'env': sorted(os.environ), 'uid': os.getuid(), 'caps': open('/proc/self/status')"
           ".read().split('CapEff:')[1].split()[0], 'sys': os.path.exists('/sys/kernel'), "
           f"'subs': glob.glob({str(folder)!r} + '/*'), 'sol': os.path.exists({str(ROOT / 'solutions')!r}), "
           "'root': os.path.exists('/root/.bashrc') or os.path.isdir('/home')}\n"
           "import subprocess\nseen['remount'] = subprocess.run(['mount', '-o', 'remount,rw', '/usr'], "
           "capture_output=True).returncode\n"
           "subprocess.Popen(['setsid', 'sh', '-c', 'sleep 30; echo late > %s'])\n"
           "output_size = lambda *a: str(seen)" % (folder.parent / "late.txt"))
    nbformat.write(_with(solved, spy), folder / "peggy.ipynb")
    # limits: output flood, memory, a fork bomb; each one still gets its row
    flood = "import sys\nwhile True:\n    sys.stdout.write('x' * 1000000)"
    nbformat.write(_with(blank, flood), folder / "rupert.ipynb")
    nbformat.write(_with(blank, "x = bytearray(16 << 30)"), folder / "sybil.ipynb")
    nbformat.write(_with(blank, "import os, time\nfor _ in range(400):\n    if os.fork() == 0:\n"
                     "        time.sleep(20)\n        os._exit(0)"), folder / "trent.ipynb")
         # prints passes
    before = sorted(p.name for p in folder.iterdir())
    path = grade.grade(folder, cell_timeout=20, timeout=240)
    with open(path) as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    return folder, before, rows


def test_a_solution_passes_everything_and_a_blank_notebook_nothing(graded):
    _, _, rows = graded
    assert rows["alice.ipynb"]["passed"] == ALL and rows["alice.ipynb"]["total"] == ALL
    assert rows["alice.ipynb"]["missed"] == "" and rows["alice.ipynb"]["lesson"] == LESSON
    bob = rows[f"bob {LESSON} (1).ipynb"]
    assert bob["passed"] == "0" and bob["total"] == ALL and len(bob["missed"].split()) == int(ALL)


def test_a_gamed_answer_and_an_edited_check_are_missed(graded):
    carol = graded[2]["carol.ipynb"]
    assert carol["passed"] == str(int(ALL) - 2) and set(carol["missed"].split()) == {"conv2d_single", "conv2d_loops"}


def test_a_hanging_or_crashing_notebook_gets_its_row_and_stops_nothing(graded):
    _, _, rows = graded
    assert rows["dave.ipynb"]["passed"] == ALL, "the hanging cell is interrupted and the rest still runs"
    assert "kernel died" in rows["erin.ipynb"]["note"] and rows["erin.ipynb"]["passed"] == "0"
    assert rows["frank.ipynb"]["note"].startswith("not a notebook") and rows["frank.ipynb"]["lesson"] == ""


def test_a_notebook_that_deletes_files_touches_only_its_own_copy(graded):
    folder, before, rows = graded
    assert sorted(p.name for p in folder.iterdir() if p.name != "grades.csv") == before
    assert (ROOT / "notebooks" / f"{LESSON}.ipynb").exists()
    assert (folder.parent / "victim.txt").read_text() == "keep me"
    assert rows["grace.ipynb"]["lesson"] == LESSON and rows["grace.ipynb"]["passed"] == ALL


def test_no_row_says_it_ran_without_a_sandbox(graded):
    assert not [r for r in graded[2].values() if "WITHOUT a sandbox" in r["note"]]


@pytest.mark.parametrize("who", ["heidi", "ivan", "judy", "mallory", "oscar"])
def test_a_blank_notebook_that_forges_its_grade_gets_nothing(graded, who):
    """heidi prints the grading lines with the real token's name; ivan calls the old _graded and edits the
    state; judy replaces exercises.close/check/own_work; mallory rebinds F; oscar reaches the library's
    answers by a default argument, a dict, aten, attrgetter on sys.modules, a spoofed __module__, autograd."""
    assert graded[2][f"{who}.ipynb"]["passed"] == "0", graded[2][f"{who}.ipynb"]


def test_a_submission_sees_nothing_outside_its_folder_and_leaves_nothing_behind(graded):
    import time
    folder, _, rows = graded
    assert rows["peggy.ipynb"]["passed"] == ALL      # its spying output_size is replaced by the lesson's own
    time.sleep(1)
    assert not (folder.parent / "late.txt").exists(), "a setsid child outlived the sandbox"


def test_the_sandbox_hides_the_machine_and_drops_privileges(tmp_path):
    """Run in the sandbox as the grader runs it: what does the notebook's process see?"""
    import json
    import subprocess
    import sys
    from course_lib.instructor import sandbox
    if not sandbox.available():
        pytest.skip("bubblewrap cannot sandbox here")
    secret = tmp_path / "other.ipynb"
    secret.write_text("an other learner's work")
    work = tmp_path / "work"
    work.mkdir()
    code = ("import os, json, glob, subprocess, socket\n"
            "r = {'uid': os.getuid(), 'caps': open('/proc/self/status').read().split('CapEff:')[1].split()[0],\n"
            f"     'other': os.path.exists({str(secret)!r}), 'sol': os.path.exists({str(ROOT / 'solutions')!r}),\n"
            "     'sys': os.path.exists('/sys/kernel'), 'env': sorted(os.environ),\n"
            "     'pids': len(glob.glob('/proc/[0-9]*')),\n"
            "     'remount': subprocess.run(['mount', '-o', 'remount,rw', '/usr'], capture_output=True).returncode}\n"
            "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=2); r['net'] = True\n"
            "except OSError:\n    r['net'] = False\n"
            "try:\n    open('/usr/x', 'w'); r['write'] = True\nexcept OSError:\n    r['write'] = False\n"
            "print(json.dumps(r))\n")
    package = ROOT / "course_lib"
    done = subprocess.run(sandbox.command(work, [sys.executable, "-c", code], package), capture_output=True,
                          text=True, timeout=60, env={"SUBMISSIONS": str(tmp_path)}, preexec_fn=sandbox.limits())
    seen = json.loads(done.stdout)
    assert seen["uid"] == sandbox.UID and seen["caps"] == "0000000000000000"
    assert not seen["other"] and not seen["sol"] and not seen["sys"] and not seen["net"] and not seen["write"]
    assert seen["remount"] != 0 and "SUBMISSIONS" not in seen["env"] and seen["pids"] <= 3


def test_a_notebook_over_a_limit_gets_a_row_that_says_which(graded):
    rows = graded[2]
    assert rows["rupert.ipynb"]["passed"] == "0" and "file-size limit" in rows["rupert.ipynb"]["note"]
    assert rows["sybil.ipynb"]["passed"] == "0"
    assert rows["trent.ipynb"]["passed"] == "0" and rows["trent.ipynb"]["lesson"] == LESSON


def test_without_a_sandbox_the_grader_refuses_unless_told(tmp_path, monkeypatch):
    from course_lib.instructor import sandbox
    monkeypatch.setattr(sandbox, "available", lambda: False)
    nbformat.write(nbformat.read(ROOT / "student" / f"{LESSON}.ipynb", 4), tmp_path / "x.ipynb")
    assert grade.main([str(tmp_path)]) == 1 and not (tmp_path / "grades.csv").exists()


def test_every_file_gets_one_row_in_a_csv_with_the_columns(graded):
    folder, before, rows = graded
    assert sorted(rows) == before
    with open(folder / "grades.csv") as f:
        assert next(csv.reader(f)) == grade.COLUMNS


def test_grading_a_file_is_an_error_not_a_traceback(tmp_path, capsys):
    (tmp_path / "x.ipynb").write_text("{}")
    assert grade.main([str(tmp_path / "x.ipynb")]) == 1
    assert "is not a folder" in capsys.readouterr().err


def test_an_honest_solution_with_classes_models_and_in_place_steps_gets_its_marks(tmp_path):
    """Lesson 02's hard checks, graded from a short notebook of its solutions: MyLeNet1 (a learner's class,
    its instance used as a module: parameters(), state_dict(), load_state_dict(), calls), sgd_step (a course
    model and a dict passed in, changed in place over three calls, gradients included) and dense_kernel."""
    lesson = "02_lenet1_digits"
    source = nbformat.read(ROOT / "notebooks" / f"{lesson}.ipynb", 4)
    wanted = ("exercises.start(", "def dense_kernel(", "class MyLeNet1(", "def sgd_step(")
    cells = [c for c in source.cells if c.cell_type == "code" and any(w in c.source for w in wanted)
             and not c.source.lstrip().startswith("# CHECK")]
    data = nbformat.v4.new_code_cell("x_train, y_train = torch.randint(0, 256, (192, 1, 28, 28), dtype=torch.uint8), "
                                     "torch.randint(0, 10, (192,))")
    nb = nbformat.v4.new_notebook(cells=[cells[0], data] + cells[1:])
    nbformat.write(nb, tmp_path / "short.ipynb")
    from course_lib.instructor import sandbox
    row = grade.grade_one(tmp_path / "short.ipynb", grade.exercise_checks(), cell_timeout=60, timeout=240,
                          sandboxed=sandbox.available())
    missed = set(row["missed"].split())
    assert not missed & {"dense_kernel", "MyLeNet1", "sgd_step"}, row


def test_a_module_travels_as_data_only_when_all_its_classes_are_the_librarys():
    import torch

    from course_lib import models
    from course_lib.instructor import answers, remote

    net = models.LeNet1()
    again = answers.decode(answers.encode(net))
    assert type(again) is models.LeNet1 and again is not net
    probe = torch.randn(2, 1, 28, 28)
    assert torch.equal(again(probe), net(probe))

    class Mine(torch.nn.Linear):
        pass
    kept = []
    assert answers.encode(Mine(2, 2), keep=kept.append)["t"] == "handle"   # never rebuilt in the grader
    forged = answers.encode(torch.nn.Linear(2, 2))
    forged["cls"] = "builtins:eval"
    with pytest.raises(ValueError):
        remote.rebuild(forged)

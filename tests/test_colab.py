"""Playing Colab: a fresh virtual environment in which torch and torchvision are already installed (as on
Colab), ``COLAB_RELEASE_TAG`` set (as on every Colab runtime), and each lesson's first code cell run with
its install URL pointed at a local clone of this repository carrying the release tag.

It must install course_lib from that tag, leave the preinstalled torch alone, and the lesson's next cell
must import and run. The packages pip needs come from the package index (what the lesson would get on
Colab); torch and its own dependencies are the ones of this environment, linked in, never re-installed.
"""

import importlib.metadata as md
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement

from course_lib.instructor import course, release

ROOT = course.ROOT
pytestmark = pytest.mark.slow
PREINSTALLED = ("torch", "torchvision")


def _closure(names) -> list[md.Distribution]:
    """The installed distributions of ``names`` and everything they need (markers evaluated)."""
    seen, todo, found = set(), list(names), []
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        found.append(dist)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def _link_preinstalled(site: Path) -> None:
    """Make torch, torchvision and their dependencies visible in ``site`` (a folder a .pth file adds),
    with their metadata, so that pip in the new environment sees them as installed."""
    site.mkdir(parents=True)
    for dist in _closure(PREINSTALLED):
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        base = Path(dist.locate_file(""))
        for top in tops:
            target = base / top
            if target.exists() and not (site / top).exists() and not top.endswith(".pth") and top != "bin":
                (site / top).symlink_to(target)


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """``(python of the fresh environment, the clone's file URL, env)``."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to clone the repository")
    root = tmp_path_factory.mktemp("colab")
    clone = root / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    repo, tag = release.release_info()
    subprocess.run(["git", "-C", str(clone), "tag", "-f", tag], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    _link_preinstalled(root / "preinstalled")
    (site / "colab_preinstalled.pth").write_text(str(root / "preinstalled") + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update(COLAB_RELEASE_TAG="release-colab-simulated", COURSE_PROFILE="smoke", MPLBACKEND="agg",
               PATH=f"{python.parent}:{env.get('PATH', '')}", PIP_DISABLE_PIP_VERSION_CHECK="1")
    # "localhost": a PEP 508 URL needs a host (pip rejects git+file:///path in a "name @ url" requirement)
    return python, f"file://localhost{clone}", env


def _as_python(cell: str) -> str:
    """A notebook cell as plain Python: ``%pip install ARGS`` becomes what IPython's %pip runs,
    ``python -m pip install ARGS`` with the kernel's own interpreter."""
    def pip(match):
        indent, args = match.group(1), shlex.split(match.group(2))
        return f"{indent}import subprocess; subprocess.check_call([sys.executable, '-m', 'pip', *{args!r}])"
    return re.sub(r"^(\s*)%pip (.*)$", pip, cell, flags=re.M)


def _cells(name: str) -> list[str]:
    nb = nbformat.read(ROOT / "notebooks" / name, 4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _torch(python, env) -> str:
    return subprocess.run([str(python), "-c", "import torch; print(torch.__version__, torch.__file__)"],
                          env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_the_environment_starts_like_colab(colab):
    python, _, env = colab
    assert _torch(python, env).split()[0] == __import__("torch").__version__
    missing = subprocess.run([str(python), "-c", "import course_lib"], env=env, capture_output=True, text=True,
                             cwd=python.parent)
    assert missing.returncode != 0, "course_lib must not be importable before the Colab cell installs it"


@pytest.mark.parametrize("name", [p.name for p in course.lessons(ROOT / "notebooks")])
def test_each_lessons_colab_cell_installs_the_release_and_its_next_cell_runs(colab, name):
    python, clone_url, env = colab
    repo, tag = release.release_info()
    first, following = _cells(name)[0], _cells(name)[1]
    assert f"git+https://github.com/{repo}@{tag}" in first
    if first not in _INSTALLED:
        _install_as_on_colab(python, clone_url, env, name, first)
        _INSTALLED.add(first)
    # else: the very same cell was run and checked for an earlier lesson; a Colab runtime would run it
    # again, with the same result, so only the lesson's next cell runs here.
    following = following.replace("print(env.describe())",
                                  "print(env.describe()); assert 'colab=True' in env.describe()")
    nxt = subprocess.run([str(python), "-c", following], env=env, capture_output=True, text=True, timeout=300,
                         cwd=ROOT / "notebooks")
    assert nxt.returncode == 0, f"{name}: the cell after the Colab cell failed:\n{nxt.stderr[-3000:]}"


_INSTALLED: set[str] = set()       # Colab cells already run in this module's environment


def _install_as_on_colab(python, clone_url, env, name, first):
    repo, tag = release.release_info()
    torch_before = _torch(python, env)
    local = _as_python(first.replace(f"https://github.com/{repo}", clone_url))
    ran = subprocess.run([str(python), "-c", local], env=env, capture_output=True, text=True, timeout=900,
                         cwd=python.parent)
    assert ran.returncode == 0, f"{name}: the Colab cell failed:\n{ran.stdout[-2000:]}\n{ran.stderr[-3000:]}"
    shown = subprocess.run([str(python), "-m", "pip", "show", "-f", "course_lib"], env=env, capture_output=True,
                           text=True).stdout
    assert "Location:" in shown and "site-packages" in shown and "Editable" not in shown, shown
    direct = subprocess.run([str(python), "-m", "pip", "inspect"], env=env, capture_output=True, text=True).stdout
    assert f"{clone_url}" in direct and tag in direct, "course_lib must come from the clone at the release tag"
    assert _torch(python, env) == torch_before, "the preinstalled torch must be left as it was"


def test_off_colab_the_cell_does_nothing(colab):
    python, clone_url, env = colab
    off = {k: v for k, v in env.items() if k != "COLAB_RELEASE_TAG"}
    first = _cells("00_welcome.ipynb")[0]
    before = subprocess.run([str(python), "-m", "pip", "freeze"], env=off, capture_output=True, text=True).stdout
    ran = subprocess.run([str(python), "-c", _as_python(first)], env=off, capture_output=True, text=True,
                         cwd=python.parent)
    assert ran.returncode == 0 and ran.stdout == ""
    after = subprocess.run([str(python), "-m", "pip", "freeze"], env=off, capture_output=True, text=True).stdout
    assert before == after

"""The set-up stays true: one list of dependencies, pinned torch, the two README commands."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_the_lock_covers_pyproject_and_environment_yml_is_generated_from_it():
    from course_lib.instructor import lock

    assert lock.lock_problems(ROOT) == []
    assert (ROOT / "environment.yml").read_text() == lock.environment_yml(ROOT)


def test_a_stale_lock_or_environment_is_caught(tmp_path):
    """The controls: a new dependency the lock lacks, a torch pin that moved, a hand-edited environment.yml."""
    from course_lib.instructor import lock

    for name in ("pyproject.toml", "requirements.lock", "constraints.txt", "environment.yml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    assert lock.lock_problems(tmp_path) == []
    pyproject = (tmp_path / "pyproject.toml").read_text()
    added = pyproject.replace('"pytest>=7.4",', '"pytest>=7.4",\n    "tabulate>=0.9",')
    (tmp_path / "pyproject.toml").write_text(added)
    assert any("'tabulate>=0.9'" in p for p in lock.lock_problems(tmp_path))
    (tmp_path / "pyproject.toml").write_text(pyproject)
    locked = (tmp_path / "requirements.lock").read_text()
    (tmp_path / "requirements.lock").write_text(locked.replace("torch==2.14.1", "torch==2.13.0"))
    problems = lock.lock_problems(tmp_path)
    assert any("'torch==2.14.1'" in p for p in problems) and any("environment.yml" in p for p in problems)
    (tmp_path / "requirements.lock").write_text(locked)
    (tmp_path / "environment.yml").write_text((ROOT / "environment.yml").read_text().replace("==", ">="))
    assert lock.lock_problems(tmp_path) == [
        "environment.yml is not the one generated from requirements.lock: run `make lock`."]


def installed_against_lock(lines: list[str]) -> tuple[list[str], list[str]]:
    """(locked packages for this platform that are missing or at another version, installed packages
    that the lock does not name), for the lock's ``lines`` and the Python running the tests."""
    import importlib.metadata as md

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    wrong, names = [], set()
    for line in lines:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        names.add(canonicalize_name(req.name))
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            wrong.append(f"{req.name}: not installed, locked {req.specifier}")
            continue
        if not req.specifier.contains(version, prereleases=True):
            wrong.append(f"{req.name}: {version} installed, locked {req.specifier}")
    tools = {"course-lib", "pip", "setuptools", "wheel"}
    extra = sorted({canonicalize_name(d.metadata["Name"]) for d in md.distributions()} - names - tools)
    return wrong, extra


def test_the_environment_holds_exactly_the_locked_versions():
    """What `make lab` / `make test` installed is the lock: every pin at its version, nothing unlocked."""
    from course_lib.instructor import lock

    lines = lock.locked(ROOT)
    wrong, extra = installed_against_lock(lines)
    assert wrong == [] and extra == [], (wrong, extra)
    # The controls: a pin at another version, and an installed package the lock leaves out.
    moved = [line.replace("numpy==", "numpy==1.0.") if line.startswith("numpy==") else line for line in lines]
    assert any(w.startswith("numpy:") for w in installed_against_lock(moved)[0])
    assert installed_against_lock([line for line in lines if not line.startswith("tqdm==")])[1] == ["tqdm"]


def test_local_pins_and_loose_package_ranges():
    constraints = (ROOT / "constraints.txt").read_text()
    assert "torch==2.14.1" in constraints and "torchvision==0.29.1" in constraints
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any("==" in d for d in deps), "the package keeps loose ranges so Colab keeps its torch"
    assert "torch==2.14.1" in (ROOT / "environment.yml").read_text()


def test_readme_gives_the_two_commands_and_makefile_has_them():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "-c constraints.txt" in makefile and "pip install --quiet -r requirements.lock" in makefile


def ci_calls(script: str, tmp_path: Path, have: tuple[str, ...] = ()) -> list[str]:
    """Run the CI script ``script`` (the text of ``.ci/run``) with a PATH of shims: ``apt-get`` and ``make``
    record their arguments instead of running, and only the commands in ``have`` exist besides. Returns the
    recorded calls, ``"apt-get install -y -qq chromium"``, ``"make test"``, ... in order."""
    import shutil
    import subprocess

    (tmp_path / ".ci").mkdir(parents=True, exist_ok=True)
    (tmp_path / ".ci" / "run").write_text(script)
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir(exist_ok=True)
    log.write_text("")
    for tool in ("dirname",):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for name in ("apt-get", "make", *have):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n')
        (bin_dir / name).chmod(0o755)
    subprocess.run(["/bin/bash", str(tmp_path / ".ci" / "run")], env={"PATH": str(bin_dir)}, check=True,
                   capture_output=True, timeout=30)
    return log.read_text().splitlines()


def check_ci_installs_chromium(script: str, tmp_path: Path) -> None:
    """Without chromium the script installs it with apt-get, then runs make test; with it, it installs no
    chromium (another install line of the same form, for another tool, is allowed)."""
    missing = ci_calls(script, tmp_path / "missing")
    assert any(c.startswith("apt-get install") and "chromium" in c.split() for c in missing), missing
    assert missing[-1] == "make test", missing
    present = ci_calls(script, tmp_path / "present", have=("chromium",))
    assert not any(c.startswith("apt-get install") and "chromium" in c.split() for c in present), present
    assert present[-1] == "make test", present


def test_ci_installs_chromium_when_missing_and_runs_make_test(tmp_path):
    check_ci_installs_chromium((ROOT / ".ci" / "run").read_text(), tmp_path)


def test_the_ci_check_fails_on_a_script_that_never_installs(tmp_path):
    """The old test only looked for the word "chromium" in .ci/run: a script naming it in a comment passed."""
    script = (ROOT / ".ci" / "run").read_text()
    planted = re.sub(r"apt-get install[^\n]*chromium", "true  # chromium", script)
    assert planted != script and "chromium" in planted
    with pytest.raises(AssertionError):
        check_ci_installs_chromium(planted, tmp_path)


def test_the_wheel_ships_the_mnist_sample_and_it_loads_from_there(tmp_path):
    """On Colab course_lib is pip-installed, not run from a checkout: the 5,000 digits must travel."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("course_lib-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("mnist-sample-images-idx3-ubyte.gz", "mnist-sample-labels-idx1-ubyte.gz", "README.md"):
        assert f"course_lib/mnist_sample/{name}" in names
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    out = subprocess.run([sys.executable, "-c", "from course_lib import digits; x, y = digits.mnist_sample('test'); "
                          "print(digits.MNIST_SAMPLE_DIR, tuple(x.shape))"], capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert str(tmp_path / "site") in out.stdout and "(1000, 1, 28, 28)" in out.stdout
    # What Colab installs: the run-time needs only; JupyterLab and the notebook tools only as extras.
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    plain = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not [line for line in plain if re.search(r"jupyterlab|nbformat|nbclient|pytest|playwright", line)], plain
    assert any(line.startswith("Requires-Dist: jupyterlab") and 'extra == "lab"' in line
               for line in metadata.splitlines())


def _floor_problems(project: dict, code: str) -> list[str]:
    """What the code uses that pyproject's floors do not cover: each feature of FLOOR_FEATURES found in
    ``code`` needs the floor it names. The features must all be found: a test that finds nothing checks
    nothing."""
    from packaging.specifiers import SpecifierSet

    python = SpecifierSet(project["requires-python"])
    torch_floor = SpecifierSet(next(r for r in project["dependencies"] if _name(r) == "torch")[len("torch"):])
    problems = []
    for feature, (what, version) in FLOOR_FEATURES.items():
        if feature not in code:
            problems.append(f"{feature} is no longer in course_lib: update FLOOR_FEATURES")
            continue
        older = f"{version[:-1]}{int(version[-1]) - 1}"
        if older in (python if what == "python" else torch_floor):
            problems.append(f"{feature} needs {what} >= {version}, but pyproject allows {older}")
    return problems


# Features of course_lib and the oldest Python or torch that has them.
FLOOR_FEATURES = {"tomllib": ("python", "3.11"), 'torch.amp.GradScaler("cuda"': ("torch", "2.4"),
                  "torch.is_autocast_enabled(x.device.type)": ("torch", "2.4")}


def test_the_declared_floors_are_what_the_code_needs():
    """pyproject's Python and torch floors cover the features the library uses (it once declared
    Python 3.10 and torch 2.1 while importing tomllib and calling torch.amp.GradScaler("cuda")); every
    module is read, subpackages too."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    code = "\n".join(p.read_text() for p in (ROOT / "course_lib").rglob("*.py"))
    assert _floor_problems(project, code) == []
    # the control: the floors this project once declared are caught
    older = {**project, "requires-python": ">=3.10",
             "dependencies": ["torch>=2.1" if _name(r) == "torch" else r for r in project["dependencies"]]}
    assert len(_floor_problems(older, code)) == 3
    assert _floor_problems(project, "nothing") != []
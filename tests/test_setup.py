"""The set-up stays true: one list of dependencies, pinned torch, the two README commands."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]} | {
        _name(r) for extra in project["optional-dependencies"].values() for r in extra}
    yml = (ROOT / "environment.yml").read_text()
    pip_lines = [l.strip()[2:] for l in yml.split("pip:")[1].splitlines() if l.strip().startswith("- ")]
    listed = {_name(l) for l in pip_lines if not l.startswith("-e")}
    assert listed == wanted
    assert "python=3.11" in yml and any(l.startswith("-e .") for l in pip_lines)


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
    assert "-c constraints.txt" in makefile


def test_ci_runs_make_test():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "chromium" in ci


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
    assert any(line.startswith("Requires-Dist: jupyterlab") and 'extra == "lab"' in line for line in metadata.splitlines())

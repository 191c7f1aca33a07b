"""The set-up stays true: one list of dependencies, pinned torch, the two README commands."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
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

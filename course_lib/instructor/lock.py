"""The locked environment: ``requirements.lock`` (every dependency pinned, made by ``make lock``), the
checks that it is up to date with ``pyproject.toml`` and ``constraints.txt``, and ``environment.yml``
generated from it for conda users.

    python -m course_lib.instructor lock        # write environment.yml from requirements.lock (make lock runs it)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..files import atomic_write
from .course import ROOT


ENVIRONMENT_HEADER = """\
# Generated from requirements.lock by `make lock` (python -m course_lib.instructor lock): do not edit.
# The course's conda environment, with the same locked versions as `make lab`:
#   conda env create -f environment.yml && conda activate convnet-course
"""


def locked(root: Path = ROOT) -> list[str]:
    """The pinned requirements of ``requirements.lock`` (``name==version`` with any ``; marker``), in order."""
    lines = (Path(root) / "requirements.lock").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith((" ", "#", "-"))]


def environment_yml(root: Path = ROOT) -> str:
    """The text of ``environment.yml``: Python 3.11 from conda-forge, then every locked pin through pip."""
    pins = "".join(f"      - {json.dumps(pin) if ';' in pin else pin}\n" for pin in locked(root))
    return (ENVIRONMENT_HEADER + "name: convnet-course\nchannels:\n  - conda-forge\ndependencies:\n"
            "  - python=3.11\n  - pip\n  - pip:\n" + pins + "      - -e .\n")


def lock_problems(root: Path = ROOT) -> list[str]:
    """What is stale about the lock: a dependency of ``pyproject.toml`` (extras included) that the lock
    lacks or pins outside its range, a torch pin that differs from ``constraints.txt``, and an
    ``environment.yml`` that is not the one generated from the lock."""
    import tomllib

    from packaging.requirements import Requirement

    root = Path(root)
    if not (root / "requirements.lock").exists():
        return [f"{root / 'requirements.lock'} is missing: run `make lock`."]
    pins = {}
    for line in locked(root):
        req = Requirement(line)
        pins.setdefault(req.name.lower().replace("_", "-"), set()).add(str(req.specifier).removeprefix("=="))
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    constraints = (root / "constraints.txt").read_text().splitlines()
    wanted += [line for line in constraints if line and not line.startswith("#")]
    problems = []
    for line in wanted:
        req = Requirement(line)
        versions = pins.get(req.name.lower().replace("_", "-"), set())
        if not versions or not all(req.specifier.contains(v, prereleases=True) for v in versions):
            problems.append(f"requirements.lock does not pin {line!r} (it has {sorted(versions) or 'nothing'}): "
                            "run `make lock`.")
    env = root / "environment.yml"
    if not env.exists() or env.read_text() != environment_yml(root):
        problems.append("environment.yml is not the one generated from requirements.lock: run `make lock`.")
    return problems


def main(argv=None) -> int:
    atomic_write(ROOT / "environment.yml", lambda f: f.write(environment_yml()), mode="w")
    print("wrote environment.yml")
    return 0


if __name__ == "__main__":
    sys.exit(main())

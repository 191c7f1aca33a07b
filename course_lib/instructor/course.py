"""Where the course's files are: its root folder, its lessons in a folder, and reading a notebook."""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]   # the course checkout: course_lib/instructor/ is two folders down


class NotebookError(ValueError):
    """A lesson notebook is malformed (the message names the notebook and cell)."""


def lessons(folder: Path) -> list[Path]:
    """The lesson notebooks ``NN_name.ipynb`` in ``folder``, in order."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


def read_notebook(path: Path):
    """Read a notebook; a file that is not valid notebook JSON raises :class:`NotebookError` naming it."""
    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises NotJSONError, ValidationError or a JSON decode error
        first = str(err).strip().split("\n")[0][:160]
        raise NotebookError(f"{path} is not a valid notebook ({type(err).__name__}: {first}).") from None


def root_of(src) -> Path:
    """The course tree of a lesson folder: its parent when that holds a pyproject.toml, else this one."""
    parent = Path(src).resolve().parent
    return parent if (parent / "pyproject.toml").exists() else ROOT


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    from ..files import atomic_write

    atomic_write(path, lambda f: f.write(text), mode="w")

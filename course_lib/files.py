"""Files on disk: the course's data folder, and writes that never leave a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The dataset cache folder: ``root``, else ``$COURSE_DATA``, else ``data/`` beside the repo.

    The folder is created if needed.
    """
    if root is None:
        root = os.environ.get("COURSE_DATA") or Path(__file__).resolve().parent.parent / "data"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[object], None], mode: str = "wb") -> Path:
    """Write a file through a temporary file in the same folder and a rename.

    ``write`` gets the open file. An interrupted write never leaves a half-written ``path`` and
    never a stray temporary file. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; course files are readable by all
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

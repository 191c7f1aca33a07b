"""Files on disk: the course's data folder, and writes that never leave a half-written file."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Callable


class DataFolderError(OSError):
    """The data folder cannot be used (it is a file, or cannot be created): the message says what to do."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The dataset cache folder: ``root``, else ``$COURSE_DATA``, else ``data/`` beside the repo.

    The folder is created if needed. Raises :class:`DataFolderError` naming the path when it is a file
    or cannot be created.
    """
    setting = root is None and os.environ.get("COURSE_DATA")
    if root is None:
        root = setting or Path(__file__).resolve().parent.parent / "data"
    path = Path(root).expanduser()
    where = f"the data folder {path}" + (" (from $COURSE_DATA)" if setting else "")
    if path.exists() and not path.is_dir():
        raise DataFolderError(f"{where} is a file, not a folder: point COURSE_DATA at a folder (or unset it to use "
                              "data/ beside the course).")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataFolderError(f"{where} cannot be created ({err.strerror or err}): point COURSE_DATA at a folder "
                              "you may write to.") from None
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[object], None], mode: str = "wb") -> Path:
    """Write a file through a temporary file in the same folder and a rename.

    ``write`` gets the open file; ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8): the file is written whole
    (appending, ``"a"``, is refused: it would lose what is there). An interrupted write never leaves a
    half-written ``path`` and never a stray temporary file. A file that exists keeps its permissions; a
    symbolic link is written through (its target is replaced, the link stays); ``~`` is the home folder. A
    name as long as the file system allows works (the temporary file's name is short). Returns the path.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes a whole file: mode must be 'w' (text) or 'wb' (bytes), got {mode!r}.")
    path = Path(path).expanduser()
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        keep = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        keep = 0o666 & ~_umask()       # a new file: as open() would make it
    # a short name of its own beside the target: the target's name may already be as long as names can be
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix="." + target.name[:40] + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            write(f)
        os.chmod(tmp, keep)  # mkstemp makes 0600 files
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current

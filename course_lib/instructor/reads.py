"""What a lesson's run reads of the library: the files of ``course_lib/`` its processes open or list.

A solution records them (:func:`solutions.fingerprint`), so that it goes stale when a data file it read
changes, and not when another one does: a new reference AlexNet re-runs the lessons that load it, not lesson 09.
The processes record it themselves: :func:`recording` puts a ``sitecustomize.py`` on ``PYTHONPATH``, so that
the lesson's kernel and every Python process it starts (``torchrun``'s workers, ``multiprocessing``, a shell
line) install an audit hook (:func:`record`, PEP 578) before anything else runs; the hook sees every ``open``
and directory listing made through Python (``torch.load``, ``np.load``, PIL and ``json`` all open through it).
It fails closed: a process that records nothing at all (the hook was not installed) makes the run unknown, and
an unknown run depends on every data file, as a solution made before this module does. What it cannot see:
a file opened by C code that bypasses Python's ``open`` (none in the course today), by a program that is not
Python (a shell's ``cat``), or whose existence alone was tested (``os.stat`` raises no audit event).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

LOG_SETTING = "COURSE_READS_LOG"
LIBRARY_SETTING = "COURSE_READS_LIBRARY"
HOOKED = "hooked"         # the first line each recording process writes
# Loaded by file path, not imported: importing course_lib first would run its __init__ before the hook is on.
# Then the sitecustomize this one hides, if any, runs too.
SITECUSTOMIZE = """import importlib.util as _u, os as _os, sys as _sys
_spec = _u.spec_from_file_location("_course_reads", {reads!r})
_module = _u.module_from_spec(_spec)
_spec.loader.exec_module(_module)
_module.record()
for _folder in _sys.path:
    _other = _os.path.join(_folder or _os.getcwd(), "sitecustomize.py")
    if _os.path.abspath(_other) != _os.path.abspath(__file__) and _os.path.isfile(_other):
        exec(compile(open(_other).read(), _other, "exec"), {{"__name__": "sitecustomize", "__file__": _other}})
        break
"""


def record(log: str | None = None, library: str | None = None) -> None:
    """Install, in this process, an audit hook that appends to file ``log`` (default ``$COURSE_READS_LOG``):
    :data:`HOOKED` first, then each file under ``library`` (default ``$COURSE_READS_LIBRARY``) opened for reading,
    as ``file <path>``, and each such folder listed, as ``folder <path>`` (paths relative to ``library``, both as
    written and as resolved, so that a link and its target both count). One line per path and process; does
    nothing when either setting is unset. The hook never raises: a failure to record writes ``?``."""
    log = log or os.environ.get(LOG_SETTING)
    library = library or os.environ.get(LIBRARY_SETTING)
    if not log or not library:
        return
    roots = {os.path.realpath(library), os.path.normpath(os.path.abspath(library))}
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)    # forked children share it: whole lines
    seen = set()

    def write(line: str) -> None:
        if line not in seen:
            os.write(fd, (line + "\n").encode("utf-8", "surrogateescape"))
            seen.add(line)

    def relative(path: str) -> list[str]:
        found = []
        for p in {os.path.normpath(os.path.abspath(path)), os.path.realpath(path)}:
            for root in roots:
                if p == root:
                    found.append(".")
                elif p.startswith(root + os.sep):
                    found.append(p[len(root) + 1:])
        return found

    def hook(event: str, args: tuple) -> None:
        try:
            if event == "open":
                path, mode, flags = (tuple(args) + (None, None, None))[:3]
                if path is None or isinstance(path, int):      # an open file descriptor: opened already
                    return
                writes = (any(c in mode for c in "wax+") if isinstance(mode, str)
                          else isinstance(flags, int) and flags & os.O_ACCMODE != os.O_RDONLY)
                path = os.fsdecode(path)
                if not writes and not os.path.isdir(path):
                    for rel in relative(path):
                        write(f"file {rel}")
            elif event in ("os.listdir", "os.scandir"):
                path = args[0] if args and args[0] is not None else "."
                if not isinstance(path, int):
                    for rel in relative(os.fsdecode(path)):
                        write(f"folder {rel}")
        except Exception:       # a hook that raises would break the lesson's own call
            with contextlib.suppress(Exception):
                write("?")

    write(HOOKED)
    sys.addaudithook(hook)


def parse(text: str, library: Path) -> list[str] | None:
    """The library's data the run read, from its log ``text``: sorted paths relative to ``library``, a listed
    folder as its path with a trailing ``/`` (its names count, not its files' bytes); ``None`` (unknown) when
    no process recorded anything or a hook failed."""
    lines = text.splitlines()
    if HOOKED not in lines or "?" in lines:
        return None
    found = set()
    for line in lines:
        kind, _, rel = line.partition(" ")
        if kind == "file" and "__pycache__" not in Path(rel).parts:
            found.add(rel)
        elif kind == "folder":
            found.add("./" if rel == "." else rel.rstrip("/") + "/")
    return sorted(found)


@contextlib.contextmanager
def recording(library: Path):
    """While in this block, a process started from this one (a Jupyter kernel, and what it starts) records
    what it reads of ``library`` (a ``sitecustomize.py`` first on ``PYTHONPATH``, and the two settings of
    :func:`record`). Yields a callable that returns the reads so far (:func:`parse`)."""
    names = ("PYTHONPATH", LOG_SETTING, LIBRARY_SETTING)
    old = {k: os.environ.get(k) for k in names}
    with tempfile.TemporaryDirectory(prefix="course-reads-") as tmp:
        (Path(tmp) / "sitecustomize.py").write_text(SITECUSTOMIZE.format(reads=str(Path(__file__).resolve())),
                                                    encoding="utf-8")
        log = Path(tmp) / "reads.log"
        log.touch()
        os.environ.update({"PYTHONPATH": os.pathsep.join([tmp] + ([old["PYTHONPATH"]] if old["PYTHONPATH"] else [])),
                           LOG_SETTING: str(log), LIBRARY_SETTING: str(Path(library).resolve())})
        try:
            yield lambda: parse(log.read_text(encoding="utf-8", errors="surrogateescape"), Path(library).resolve())
        finally:
            for k, v in old.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)

"""What a lesson's run reads of the library: the files of ``course_lib/`` its kernel opens or lists.

A solution records them (:func:`solutions.fingerprint`), so that it goes stale when a data file it read
changes, and not when another one does: a new reference AlexNet re-runs the lessons that load it, not lesson 09.
The kernel records them itself: :func:`recording` gives it an IPython start-up file that installs an audit hook
(:func:`record`, PEP 578), which sees every ``open`` and every directory listing, in C code's ``open`` too
(``torch.load``, ``np.load``, PIL). A forked child (a ``DataLoader`` worker) keeps the hook; another Python
process started by the lesson (``torchrun``'s workers) does not, so a run that starts one is recorded as
unknown and depends on every data file, as before this module. What the hook cannot see: a file whose
existence alone was tested (``os.stat`` raises no audit event); a lesson that does something only when a data
file is absent would not go stale when it appears.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

LOG_SETTING = "COURSE_READS_LOG"
LIBRARY_SETTING = "COURSE_READS_LIBRARY"
UNKNOWN = "*"          # the line a run writes when a process it started may read anything
STARTUP = "from course_lib.instructor.reads import record\nrecord()\n"


def record(log: str | None = None, library: str | None = None) -> None:
    """Install, in this process, an audit hook that appends to file ``log`` (default ``$COURSE_READS_LOG``) each
    file under ``library`` (default ``$COURSE_READS_LIBRARY``) opened, as ``file <path>``, each such folder
    listed, as ``folder <path>``, and :data:`UNKNOWN` when a Python process is started (it runs without the
    hook). One line per path and process; does nothing when either is unset. Never raises in the hook: a
    failure to record writes :data:`UNKNOWN`."""
    log = log or os.environ.get(LOG_SETTING)
    library = library or os.environ.get(LIBRARY_SETTING)
    if not log or not library:
        return
    root = os.path.realpath(library) + os.sep
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)    # forked children share it: whole lines
    seen = set()

    def write(line: str) -> None:
        if line not in seen:
            seen.add(line)
            os.write(fd, (line + "\n").encode("utf-8", "surrogateescape"))

    def hook(event: str, args: tuple) -> None:
        try:
            if event in ("open", "os.listdir", "os.scandir"):
                path = args[0] if args else None
                if path is None or isinstance(path, int):     # an open file descriptor: opened already
                    return
                path = os.path.realpath(os.fsdecode(path))
                if path.startswith(root):
                    write(("file " if event == "open" else "folder ") + path[len(root):])
            elif event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.spawn"):
                program = args[0] if event != "subprocess.Popen" else (args[0] or (args[1] or [""])[0])
                argv = args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else [program]
                words = [os.path.basename(os.fsdecode(w)) for w in [program, *argv[:1]] if w]
                if any("python" in w or w in ("torchrun", "jupyter") for w in words):
                    write(UNKNOWN)
        except Exception:       # a hook that raises would break the lesson's own call
            with contextlib.suppress(Exception):
                write(UNKNOWN)

    sys.addaudithook(hook)


def parse(text: str, library: Path) -> list[str] | None:
    """The library's files a run read, from its log ``text``: sorted paths relative to ``library`` (a listed
    folder counts as every file directly in it, as it is now); ``None`` when the log says :data:`UNKNOWN`."""
    found = set()
    for line in text.splitlines():
        if line == UNKNOWN:
            return None
        kind, _, rel = line.partition(" ")
        path = Path(library) / rel
        if kind == "file":
            found.add(rel)
        elif kind == "folder" and path.is_dir():
            found |= {str(p.relative_to(library)) for p in path.iterdir() if p.is_file()}
    return sorted(p for p in found if "__pycache__" not in Path(p).parts)


@contextlib.contextmanager
def recording(library: Path):
    """While in this block, a Jupyter kernel started from this process records what it reads of ``library``
    (its own IPython folder with a start-up file, and the two settings of :func:`record`). Yields a callable
    that returns the kernel's reads so far (:func:`parse`)."""
    names = ("IPYTHONDIR", LOG_SETTING, LIBRARY_SETTING)
    old = {k: os.environ.get(k) for k in names}
    with tempfile.TemporaryDirectory(prefix="course-reads-") as tmp:
        startup = Path(tmp) / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-course-reads.py").write_text(STARTUP, encoding="utf-8")
        log = Path(tmp) / "reads.log"
        log.touch()
        os.environ.update({"IPYTHONDIR": str(Path(tmp) / "ipython"), LOG_SETTING: str(log),
                           LIBRARY_SETTING: str(Path(library).resolve())})
        try:
            yield lambda: parse(log.read_text(encoding="utf-8", errors="surrogateescape"), Path(library).resolve())
        finally:
            for k, v in old.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)

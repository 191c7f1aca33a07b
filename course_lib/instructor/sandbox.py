"""The sandbox a learner's notebook runs in while it is graded: bubblewrap (``bwrap``).

Inside: a user namespace with no capabilities and uid/gid 65534, its own PID tree (all of it killed when the
grader lets go: ``--die-with-parent``), no network, its own /proc, a minimal /dev, an empty /tmp, no /sys. It
sees only the system's programs and libraries (/usr), the Python environment and the course package (all
read-only) and its own work folder (the only place it may write). Not the other submissions, not
solutions/ or notebooks/, not anyone's home. The environment is clean: only what the lesson needs. Limits
on memory, processes, file size and CPU time are set before it starts.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MEMORY = 8 << 30            # bytes of address space
PROCESSES = 256
FILE_SIZE = 64 << 20        # bytes a file may grow to (its output log included)
UID = 65534
_works: dict[str, bool] = {}


def environment(work: Path, package_parent: Path) -> dict[str, str]:
    """The whole environment of the notebook's process."""
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(work / "home"),
            "TMPDIR": str(work / "tmp"), "COURSE_DATA": str(work / "data"), "COURSE_PROFILE": "smoke",
            "MPLBACKEND": "agg", "MPLCONFIGDIR": str(work / "matplotlib"), "IPYTHONDIR": str(work / "ipython"),
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(package_parent), "OMP_NUM_THREADS": "1",
            "LANG": "C.UTF-8"}


def command(work: Path, argv: list[str], package: Path, extra: tuple[Path, ...] = ()) -> list[str]:
    """``bwrap ... argv``: ``argv`` run in the sandbox with ``work`` its writable folder (and current one)."""
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--uid", str(UID), "--gid", str(UID), "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for top in ("/bin", "/lib", "/lib64", "/lib32", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    reads = {Path("/usr"), Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent,
             package, *extra}
    for path in sorted({p.resolve() for p in reads if p.exists()}):
        args += ["--ro-bind", str(path), str(path)]
    for name in ("/etc/ld.so.cache", "/etc/localtime"):
        args += ["--ro-bind-try", name, name]
    # its own name, localhost, found without a network (torch.distributed's processes meet at it)
    etc = work / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "hosts").write_text("127.0.0.1 localhost sandbox\n::1 localhost sandbox\n")
    (etc / "nsswitch.conf").write_text("hosts: files\n")
    args += ["--hostname", "sandbox", "--ro-bind", str(etc / "hosts"), "/etc/hosts",
             "--ro-bind", str(etc / "nsswitch.conf"), "/etc/nsswitch.conf"]
    args += ["--bind", str(work), str(work), "--chdir", str(work), "--clearenv"]
    for key, value in environment(work, package.parent).items():
        args += ["--setenv", key, value]
    return args + ["--"] + argv


def limits(memory: int = MEMORY, processes: int = PROCESSES, file_size: int = FILE_SIZE, cpu: int = 900):
    """A ``preexec_fn`` that sets the limits (they pass on to everything the notebook starts)."""
    def apply():
        for what, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_NPROC, processes),
                            (resource.RLIMIT_FSIZE, file_size), (resource.RLIMIT_CPU, cpu),
                            (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(what, (value, value))
    return apply


def available() -> bool:
    """Whether notebooks can be graded in the sandbox here (tried once: bwrap runs Python, which finds the
    root read-only, its work folder writable and no network)."""
    key = shutil.which("bwrap") or ""
    if key not in _works:
        _works[key] = False
        if key and sys.platform.startswith("linux"):
            with tempfile.TemporaryDirectory(prefix="grade-probe-") as work:
                os.chmod(work, 0o777)
                probe = ("import os, socket\nopen('ok', 'w').write(str(os.getuid()))\n"
                         "assert not os.path.exists('/sys/kernel') and not os.access('/usr', os.W_OK)\n"
                         "socket.create_connection(('1.1.1.1', 80), timeout=1)\n")
                try:
                    done = subprocess.run(command(Path(work), [sys.executable, "-c", probe], Path(work)),
                                          capture_output=True, text=True, timeout=60, preexec_fn=limits())
                    _works[key] = (done.returncode != 0 and "OSError" in done.stderr
                                   and Path(work, "ok").read_text() == str(UID))
                except (OSError, subprocess.SubprocessError):
                    pass
    return _works[key]

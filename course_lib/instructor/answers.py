"""The two sides of grading one notebook. In the sandbox (``python -m course_lib.instructor.answers CELLS
CELL_TIMEOUT``), the learner's cells run (check cells left out), then the process answers requests on its
own pipe: the value of a name, or a call of the learner's function under ``own_work``'s watch. In the
grader, :class:`Client` sends them and decodes the replies as data only (JSON, raw array bytes of a few
dtypes: never a pickle), and :class:`Answer` stands for a learner's function in the course's check cells.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import signal
import struct
import sys

LIMIT = 1 << 30            # the largest reply the grader reads
DTYPES = {"bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "complex64",
          "complex128"}


# --- data both ways -----------------------------------------------------------------------------------

def encode(value, depth: int = 0, keep=None):
    """A learner's value as JSON-able data (tensors and arrays as raw bytes, a module of the libraries as its
    class's name and its state); anything else is kept by ``keep`` (the notebook's side: a handle the grader
    may ask about) or says its type."""
    import numpy as np
    import torch

    if depth > 20:
        raise ValueError("the answer is nested too deep")
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"t": "v", "v": value}
    if torch.is_tensor(value) or isinstance(value, (np.ndarray, np.generic)):
        kind = "tensor" if torch.is_tensor(value) else "scalar" if isinstance(value, np.generic) else "array"
        array = value.detach().cpu().resolve_conj().resolve_neg() if torch.is_tensor(value) else value
        if torch.is_tensor(array) and array.dtype == torch.bfloat16:
            array = array.float()
        array = np.ascontiguousarray(array.numpy() if torch.is_tensor(array) else array)
        if array.dtype.name not in DTYPES:
            raise TypeError(f"an array of {array.dtype}")
        return {"t": kind, "dtype": array.dtype.name, "shape": list(array.shape),
                "data": base64.b64encode(array.tobytes()).decode()}
    if isinstance(value, (tuple, list)):
        return {"t": "tuple" if isinstance(value, tuple) else "list",
                "items": [encode(v, depth + 1, keep) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"t": "dict", "items": {k: encode(v, depth + 1, keep) for k, v in value.items()}}
    if isinstance(value, torch.nn.Module):
        with contextlib.suppress(Exception):
            from .remote import module_data

            return module_data(value, depth)
    if keep is not None:
        return {"t": "handle", "id": keep(value), "type": type(value).__name__[:80]}
    if isinstance(value, type(sys)):
        return {"t": "module", "name": value.__name__}
    return {"t": "object", "type": type(value).__name__[:80]}


class Opaque:
    """A learner's value the grader cannot carry (not numbers, arrays or containers of them)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self):
        return f"<a {self.type_name} the grader cannot carry>"


def decode(data, client=None, name: str = ""):
    """The value :func:`encode` made, rebuilt from data alone (a callable becomes an :class:`Answer`)."""
    import numpy as np
    import torch

    kind = data["t"]
    if kind == "v":
        if not (data["v"] is None or isinstance(data["v"], (bool, int, float, str))):
            raise ValueError("not a plain value")
        return data["v"]
    if kind in ("tensor", "array", "scalar"):
        if data["dtype"] not in DTYPES:
            raise ValueError(f"not an array type the grader reads: {data['dtype']}")
        array = np.frombuffer(base64.b64decode(data["data"]), dtype=data["dtype"]).reshape(data["shape"]).copy()
        return torch.from_numpy(array) if kind == "tensor" else array[()] if kind == "scalar" else array
    if kind in ("tuple", "list"):
        items = [decode(v, client) for v in data["items"]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {str(k): decode(v, client) for k, v in data["items"].items()}
    if kind == "nn":
        from .remote import rebuild

        return rebuild(data)
    if kind == "handle" and client is not None:
        from .remote import Answer

        return Answer(client, int(data["id"]), name or str(data.get("type", "value"))[:80])
    return Opaque(str(data.get("type") or data.get("name") or kind))


def portable(value):
    """Arguments as the check made them, tensors detached (``requires_grad`` kept where grad mode is on)."""
    import torch

    if torch.is_tensor(value):
        grad = value.requires_grad and value.is_floating_point() and torch.is_grad_enabled()
        return value.detach().clone().requires_grad_(grad)
    if isinstance(value, (tuple, list)):
        return type(value)(portable(v) for v in value)
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    return value


def send(fd: int, message: dict) -> None:
    body = json.dumps(message).encode()
    data = struct.pack("!Q", len(body)) + body
    while data:
        data = data[os.write(fd, data):]


def receive(fd: int, timeout: float | None = None) -> dict:
    """One message from ``fd``; ``EOFError`` when the other side is gone, ``TimeoutError`` after ``timeout``."""
    def read(n):
        chunks, left = [], n
        while left:
            if timeout is not None and not select.select([fd], [], [], timeout)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    size = struct.unpack("!Q", read(8))[0]
    if size > LIMIT:
        raise ValueError(f"a reply of {size} bytes")
    message = json.loads(read(size))
    if not isinstance(message, dict):
        raise ValueError("a reply that is not a message")
    return message


# --- the grader's side ------------------------------------------------------------------------------

class Gone(RuntimeError):
    """The notebook's process stopped answering."""


class Client:
    """Talks to the notebook's process over its pipes (``to``: its stdin, ``back``: its stdout)."""

    def __init__(self, to: int, back: int, timeout: float):
        self.to, self.back, self.timeout, self.gone = to, back, timeout, ""

    def ask(self, message: dict, timeout: float | None = None) -> dict:
        if self.gone:
            raise Gone(self.gone)
        try:
            send(self.to, message)
            return receive(self.back, timeout or self.timeout)
        except TimeoutError:
            self.gone = f"an answer ran over {timeout or self.timeout:.0f} s"
        except (OSError, EOFError, ValueError, struct.error) as err:
            self.gone = f"the notebook's process stopped ({type(err).__name__})"
        raise Gone(self.gone)

    def get(self, name: str):
        reply = self.ask({"op": "get", "name": name})
        if "error" in reply:
            return Missing
        return decode(reply["value"], self, name) if "value" in reply else Missing


class Missing:
    """A name the learner's notebook does not define."""


# --- the notebook's side -----------------------------------------------------------------------------

def alarm(seconds: float) -> None:
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0))


def _interrupt(signum, frame):
    raise KeyboardInterrupt("the cell ran over its time")


def serve(cells: list[str], cell_timeout: float) -> None:
    """Run ``cells`` in an IPython shell, then answer the grader until it closes the pipe."""
    from traitlets.config import Config
    from IPython.core.interactiveshell import InteractiveShell

    from .remote import answer

    to_grader, from_grader = os.dup(1), os.dup(0)
    out = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    # tqdm's monitor thread would outlive the cells and make every watched call refuse "other threads": the
    # notebook's progress bars need no monitor here
    import tqdm.std
    tqdm.std.tqdm.monitor_interval = 0
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    signal.signal(signal.SIGALRM, _interrupt)
    interrupted = failed = 0
    for source in cells:
        alarm(cell_timeout)
        try:
            result = shell.run_cell(source, store_history=False, silent=False)
            failed += not result.success
            interrupted += isinstance(result.error_in_exec, KeyboardInterrupt)
        except BaseException:   # noqa: BLE001 — an interrupt between the shell's own steps
            interrupted += 1
        finally:
            alarm(0)
    signal.signal(signal.SIGALRM, _interrupt)
    send(to_grader, {"ready": True, "failed": failed, "interrupted": interrupted})
    kept: list = []

    def keep(value) -> int:
        kept.append(value)
        return len(kept) - 1

    while True:
        try:
            request = receive(from_grader)
        except (EOFError, OSError):
            return
        watch = None
        try:
            reply, watch = answer(request, shell.user_ns, kept, keep, cell_timeout)
        except BaseException as err:   # noqa: BLE001 — whatever the learner's code raised is a reply
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
            reply = {"error": [type(err).__name__, first]}
        send(to_grader, reply)


if __name__ == "__main__":
    serve(json.load(open(sys.argv[1])), float(sys.argv[2]))

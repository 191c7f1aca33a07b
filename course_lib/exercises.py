"""Feedback on the exercises, as the best autograders give it: what was expected on which case at the first
wrong answer, a hint from the second, a tick when it passes, and "exercises passed: k of n" at the end.

In a lesson::

    exercises.start("03_training_dynamics", total=4)            # once, at the top
    ...
    with exercises.check("my_sparsity"):                          # a check cell
        exercises.own_work(my_sparsity, measure.sparsity)         # not the library's answer, however reached
        exercises.close(my_sparsity(acts), 0.75, "a 2 x 2 map with three zeros")
    ...
    exercises.summary()                                           # the lesson's last cell

Anything the learner's code does wrong inside a check is a miss with a message — a failed comparison, an
answer of the wrong type, shape or dtype, NaN, or an exception raised by the answer — never a traceback.
The hints are not in the check cell (a student notebook shows no answer before the learner tried): they
are written in the lesson source's check-cell metadata and shipped in ``exercise_hints.json`` (``make
student`` writes it), and shown from the second miss on. The state is per kernel (one lesson); running a
check cell again after fixing the answer counts once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from pathlib import Path
from typing import Iterator

from .checks import whole_number

HINTS_FILE = Path(__file__).resolve().parent / "exercise_hints.json"

_state = {"lesson": None, "total": 0, "passed": [], "misses": {}}


def start(lesson: str, total: int) -> None:
    """Begin counting the ``total`` exercises of ``lesson`` (forgets earlier passes in this kernel)."""
    total = whole_number(total, "total", low=0, expected="the number of exercises (a whole number >= 0)")
    _close_watches()
    _state.update(lesson=lesson, total=total, passed=[], misses={})


@functools.lru_cache(maxsize=1)
def _hints() -> dict:
    try:
        return json.loads(HINTS_FILE.read_text())
    except (OSError, ValueError):
        return {}


def hint_for(name: str, lesson: str | None = None) -> str | None:
    """The hint of exercise ``name`` of ``lesson`` (default: the lesson started), or None."""
    return _hints().get(lesson or _state["lesson"] or "", {}).get(name)


class Miss(AssertionError):
    """A wrong answer: its message says what was expected on which case (and, from the second miss, a hint)."""


@contextlib.contextmanager
def check(name: str, hint: str | None = None) -> Iterator[None]:
    """Run the ``with`` block as the check of exercise ``name``. A failed assertion, or any exception the
    learner's code raises in the block, is a miss: it is raised again as :class:`Miss` with what was
    expected (never the learner's traceback); from the second miss of this exercise on, followed by
    ``Hint: ...`` (``hint``, default the lesson's stored hint). When the block passes, the exercise counts
    as passed (the check cell prints its own tick, with what it found)."""
    from .own_work import refuse

    error = None
    try:
        yield
    except Exception as err:  # noqa: BLE001 — whatever the answer raised is a miss, said in one message
        error = err
    finally:
        for function, used in _close_watches():     # running the library's answer outranks any other miss
            try:
                refuse(function, used)
            except AssertionError as refused:
                error = refused
    if error is not None:
        misses = _state["misses"][name] = _state["misses"].get(name, 0) + 1
        if isinstance(error, AssertionError):
            message = str(error) or "the check failed"
        else:
            first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
            message = (f"Your code raised {type(error).__name__}{': ' + first if first else ''} while the check ran "
                       f"{name} on its cases: it should run without error and return what the exercise asks for.")
        hint = hint or hint_for(name)
        if misses >= 2 and hint:
            message += f"\nHint: {hint}"
        else:
            message += "\n(Fix it and run this check again; from the second try on it gives a hint.)"
        raise Miss(message) from None
    if name not in _state["passed"]:
        _state["passed"].append(name)


# --- comparing answers --------------------------------------------------------------------------------

def close(got, expected, what: str, atol: float = 1e-6, rtol: float | None = None) -> None:
    """Assert that the answer ``got`` equals ``expected`` (a number, or a tensor or array) up to ``atol`` +
    ``rtol`` (default: ``atol``) times its largest value, on the case ``what``. A miss says what is wrong:
    not a number or an array, the wrong shape, NaN or infinity, or the first position that differs and by how much."""
    import numpy as np
    import torch

    want = torch.as_tensor(np.asarray(expected.detach().cpu() if torch.is_tensor(expected) else expected),
                           dtype=torch.float64)
    kind = "a number" if want.dim() == 0 else f"an array or tensor of shape {tuple(want.shape)}"
    if got is None or isinstance(got, (str, bytes, dict, bool)):
        raise AssertionError(f"{what}: expected {kind}, got {type(got).__name__}"
                             f"{' (did the function return its result?)' if got is None else ''}.")
    try:
        value = torch.as_tensor(np.asarray(got.detach().cpu() if torch.is_tensor(got) else got), dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise AssertionError(f"{what}: expected {kind}, got {type(got).__name__} that is not numbers.") from None
    if value.shape != want.shape:
        raise AssertionError(f"{what}: expected {kind}, got shape {tuple(value.shape)}.")
    bad = ~torch.isfinite(value)
    if bad.any():
        where = tuple(int(i) for i in bad.nonzero()[0]) if value.dim() else ()
        raise AssertionError(f"{what}: your answer holds {value[where].item()} at position {where}; expected "
                             f"finite numbers{f' ({want[where].item():.4g} there)' if value.dim() else ''}.")
    diff = (value - want).abs()
    rtol = atol if rtol is None else rtol
    if value.numel() and diff.max() > atol + rtol * want.abs().max():
        where = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), diff.shape))
        at = f" at position {where}" if where else ""
        raise AssertionError(f"{what}: expected {want[where].item():.6g}{at}, got {value[where].item():.6g}.")


def number(got, what: str) -> float:
    """``got`` as a finite Python float, or a miss saying what was expected (``what``)."""
    import numpy as np
    import torch

    if torch.is_tensor(got) or isinstance(got, np.ndarray):
        if (got.numel() if torch.is_tensor(got) else got.size) != 1:
            raise AssertionError(f"{what}: expected one number, got an array of shape {tuple(got.shape)}.")
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float, np.number)) or not math.isfinite(float(got)):
        raise AssertionError(f"{what}: expected a finite number, got {got!r}.")
    return float(got)


# --- your own work ------------------------------------------------------------------------------------

def own_work(function, *answers) -> None:
    """Refuse ``function`` (an ``AssertionError`` the check reports) when it runs one of the library's
    ``answers`` (objects: ``measure.sparsity``, ``F.conv2d``, ``nn.Conv2d``, ...): the exercise is to build the
    thing, and the check compares it with the library on cases of its own. An answer given as a string is a
    library function refused by its name (``"backward"``: any ``tensor.backward()``).

    It judges what runs, not what the code names: from here to the end of the ``check`` block, whenever
    ``function`` runs, every call it makes (Python, C, and torch's aten operators) is watched
    (``course_lib.own_work``); any route to an answer is found, and so is code that turns the watching off.
    The function being the answer itself, a ``partial`` or a subclass of it, is refused at once."""
    from . import own_work as watching

    name = getattr(function, "__name__", type(function).__name__)
    course_watch = getattr(type(function), "course_watch", None)
    if course_watch is not None:            # the grader's stand-in for a learner's function in another process
        course_watch(function, answers)
        return
    if not callable(function):
        raise AssertionError(f"{name} should be a function, got {type(function).__name__}.")
    objects = [a for a in answers if not isinstance(a, str)]
    watching.refuse(name, [watching.said(a) for a in objects if watching.same(function, a)])
    watch = watching.Watch(answers)
    opened = watch.when(function)
    opened.__enter__()
    _state.setdefault("watches", []).append((name, watch, opened))


def _close_watches() -> list[tuple[str, list[str]]]:
    """Stop every watch ``own_work`` opened; ``[(function name, what it used)]``."""
    found = []
    for name, watch, opened in reversed(_state.pop("watches", [])):
        opened.__exit__(None, None, None)
        found.append((name, watch.used))
    return found


# --- the end of a lesson ------------------------------------------------------------------------------

def passed() -> list[str]:
    """The exercises passed so far in this lesson, in the order they passed."""
    return list(_state["passed"])


def report() -> dict:
    """``{"lesson", "passed": [names], "total"}`` for this kernel: what the grader counts."""
    return {"lesson": _state["lesson"], "passed": list(_state["passed"]), "total": _state["total"]}


def summary() -> None:
    """Print ``exercises passed: k of n`` for this lesson (once: nothing is returned to be shown again)."""
    line = f"exercises passed: {len(_state['passed'])} of {_state['total']}"
    if _state["lesson"]:
        line += f" ({_state['lesson']})"
    print(line)

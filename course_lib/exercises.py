"""Feedback on the exercises, as the best autograders give it: what was expected on which case at the first
wrong answer, a hint from the second, a tick when it passes, and "exercises passed: k of n" at the end.

In a lesson::

    exercises.start("03_training_dynamics", total=4)            # once, at the top
    ...
    with exercises.check("my_sparsity", hint="Zeros are outputs equal to 0; divide their count by all outputs."):
        assert my_sparsity(acts) == 0.75, f"On a 2 x 2 map with three zeros expected 0.75, got {my_sparsity(acts)}."
    ...
    exercises.summary()                                           # the lesson's last cell

The state is per kernel (one lesson); running a check cell again after fixing the answer counts once.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

_state = {"lesson": None, "total": 0, "passed": [], "misses": {}}


def start(lesson: str, total: int) -> None:
    """Begin counting the ``total`` exercises of ``lesson`` (forgets earlier passes in this kernel)."""
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ValueError(f"total must be the number of exercises (a whole number >= 0), got {total!r}.")
    _state.update(lesson=lesson, total=total, passed=[], misses={})


@contextlib.contextmanager
def check(name: str, hint: str) -> Iterator[None]:
    """Run the ``with`` block's assertions as the check of exercise ``name``. A failed assertion is raised
    again with its message (what was expected on which case); from the second failure of this exercise on,
    followed by ``Hint: hint``. When the block passes, the exercise counts as passed (the check cell prints
its own tick, with what it found)."""
    try:
        yield
    except AssertionError as err:
        misses = _state["misses"][name] = _state["misses"].get(name, 0) + 1
        message = str(err) or "the check failed"
        if misses >= 2:
            message += f"\nHint: {hint}"
        else:
            message += "\n(Fix it and run this check again; from the second try on it gives a hint.)"
        raise AssertionError(message) from None
    if name not in _state["passed"]:
        _state["passed"].append(name)


def own_work(function, *library_names: str) -> None:
    """Fail (an ``AssertionError`` the check reports) when ``function``'s code calls one of
    ``library_names`` (e.g. ``"color_score"``, ``"F.conv2d"``): the exercise is to build the thing, and the
    check compares it with the library on cases of its own. A function whose code cannot be read passes."""
    import inspect

    try:
        code = inspect.getsource(function)
    except (OSError, TypeError):
        return
    body = "\n".join(line.split("#")[0] for line in code.splitlines()[1:])   # the body, comments left out
    used = [name for name in library_names if name in body]
    assert not used, (f"{function.__name__} calls {', '.join(used)}: write it yourself — the check compares your "
                      "version with the library's on cases of its own.")


def passed() -> list[str]:
    """The exercises passed so far in this lesson, in the order they passed."""
    return list(_state["passed"])


def summary() -> str:
    """Print and return ``exercises passed: k of n`` for this lesson."""
    line = f"exercises passed: {len(_state['passed'])} of {_state['total']}"
    if _state["lesson"]:
        line += f" ({_state['lesson']})"
    print(line)
    return line

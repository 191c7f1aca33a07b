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

import builtins
import contextlib
import dis
import functools
import json
import math
import os
import sys
import types
from pathlib import Path
from typing import Iterator

from .checks import whole_number

HINTS_FILE = Path(__file__).resolve().parent / "exercise_hints.json"
GRADING = "COURSE_GRADING"   # set by the grader: every check also prints a line it can count

_state = {"lesson": None, "total": 0, "passed": [], "misses": {}}


def start(lesson: str, total: int) -> None:
    """Begin counting the ``total`` exercises of ``lesson`` (forgets earlier passes in this kernel)."""
    total = whole_number(total, "total", low=0, expected="the number of exercises (a whole number >= 0)")
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
    try:
        yield
    except Exception as err:  # noqa: BLE001 — whatever the answer raised is a miss, said in one message
        misses = _state["misses"][name] = _state["misses"].get(name, 0) + 1
        if isinstance(err, AssertionError):
            message = str(err) or "the check failed"
        else:
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
            message = (f"Your code raised {type(err).__name__}{': ' + first if first else ''} while the check ran "
                       f"{name} on its cases: it should run without error and return what the exercise asks for.")
        hint = hint or hint_for(name)
        if misses >= 2 and hint:
            message += f"\nHint: {hint}"
        else:
            message += "\n(Fix it and run this check again; from the second try on it gives a hint.)"
        _graded("MISS", name)
        raise Miss(message) from None
    if name not in _state["passed"]:
        _state["passed"].append(name)
    _graded("PASS", name)


def _graded(verdict: str, name: str) -> None:
    """Under the grader (``$COURSE_GRADING`` holds its token for this run), say the verdict in a line it counts."""
    token = os.environ.get(GRADING)
    if token:
        print(f"[grade {token}] {verdict} {name}", file=sys.stderr, flush=True)


# --- comparing answers --------------------------------------------------------------------------------

def close(got, expected, what: str, atol: float = 1e-6, rtol: float | None = None) -> None:
    """Assert that the answer ``got`` equals ``expected`` (a number, or a tensor or array) up to ``atol`` +
    ``rtol`` (default: ``atol``) times its largest value, on the case ``what``. A miss says what is wrong: not a number or an array, the
    wrong shape, NaN or infinity, or the first position that differs and by how much."""
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

# Ways to reach code the check cannot see: refused in an exercise whatever they reach.
_RUNS_MADE_CODE = {"eval", "exec", "compile", "__import__"}
_LOOKS_UP_BY_NAME = {"getattr", "vars", "globals", "locals", "__dict__", "__getattribute__", "import_module"}


def _same(obj, answer) -> bool:
    """Is ``obj`` the library's ``answer``, an alias, a wrapper, a partial, a subclass or an instance of it?"""
    seen = 0
    while seen < 10:
        if obj is answer:
            return True
        if isinstance(answer, type) and (isinstance(obj, answer) or (isinstance(obj, type) and issubclass(obj, answer))):
            return True
        inner = (obj.func if isinstance(obj, functools.partial) else getattr(obj, "__wrapped__", None)
                 or getattr(obj, "__func__", None))
        if inner is None or inner is obj:
            return False
        obj, seen = inner, seen + 1
    return False


def _holds(module: types.ModuleType, answers) -> bool:
    """Does ``module`` have one of ``answers`` among its attributes?"""
    return any(getattr(module, a, None) is f for f in answers for a in dir(module) if not a.startswith("__"))


def _learner_function(obj) -> bool:
    """A Python function (or lambda) written outside the libraries: one whose own code the check reads too."""
    module = getattr(obj, "__module__", "") or ""
    return isinstance(obj, types.FunctionType) and not module.split(".")[0] in ("course_lib", "torch", "numpy", "scipy")


def _learner_class(obj) -> bool:
    """A class written outside the libraries (its methods are read like the learner's functions)."""
    module = getattr(obj, "__module__", "") or ""
    return isinstance(obj, type) and not module.split(".")[0] in ("course_lib", "torch", "numpy", "scipy", "builtins")


def _methods(cls) -> list:
    """The plain functions a learner's class defines (its own and its learner-written bases')."""
    found = [getattr(f, "__func__", f) for klass in cls.__mro__ if _learner_class(klass) for f in vars(klass).values()]
    return [f for f in found if isinstance(f, types.FunctionType)]


def _uses(function, answers, seen: set, names: frozenset = frozenset()) -> list[str]:
    """What in ``function``'s code (and in the learner's functions and closures it reaches) is one of
    ``answers``, is called by one of ``names`` (``"backward"``: any ``x.backward``), or is a way around the
    check; each as a phrase for the message."""
    if id(function) in seen:
        return []
    seen.add(id(function))
    found = []
    cells = dict(zip(function.__code__.co_freevars, function.__closure__ or ()))
    namespace = function.__globals__

    def resolve(name):
        if name in cells:
            try:
                return cells[name].cell_contents
            except ValueError:
                return None
        return namespace.get(name, getattr(builtins, name, None))

    def look(obj, said):
        if any(_same(obj, a) for a in answers):
            found.append(said)
        elif _learner_function(obj) and obj is not function:
            found.extend(_uses(obj, answers, seen, names))
        elif isinstance(obj, functools.partial) and _learner_function(obj.func):
            found.extend(_uses(obj.func, answers, seen, names))
        elif _learner_class(obj):
            for method in _methods(obj):
                found.extend(_uses(method, answers, seen, names))

    def walk(code):
        chain, said, dynamic, modules = None, "", None, []
        local, fromlist, base = {}, None, None      # what the function's own variables hold, as far as seen
        for ins in dis.get_instructions(code):
            op, arg = ins.opname, ins.argval
            if op == "LOAD_CONST":
                fromlist, chain = arg, None
                continue
            if op in ("STORE_FAST", "STORE_NAME", "STORE_DEREF", "STORE_GLOBAL"):
                local[arg], chain = chain, None
                continue
            if op in ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_FAST", "LOAD_ATTR",
                      "LOAD_METHOD", "IMPORT_FROM") and (arg[1] if isinstance(arg, tuple) else arg) in names:
                found.append(f"{(arg[1] if isinstance(arg, tuple) else arg)}")
            if op in ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_FAST"):
                name = arg[1] if isinstance(arg, tuple) else arg
                chain, said = (local[name] if name in local else resolve(name) if op != "LOAD_FAST" else None), name
                if name in _RUNS_MADE_CODE:
                    found.append(f"{name}() (code made at run time, which the check cannot read)")
                if name in _LOOKS_UP_BY_NAME:
                    dynamic = name
            elif op == "IMPORT_NAME":
                # `from a.b import c` takes c from a.b; `import a.b.c as d` walks a -> b -> c (Python 3.11)
                base = sys.modules.get(arg) if fromlist else sys.modules.get(arg.split(".")[0])
                chain, said = sys.modules.get(arg) if fromlist else base, arg
            elif op == "IMPORT_FROM" and base is not None:
                chain = getattr(base, arg, None) or sys.modules.get(f"{getattr(base, '__name__', '')}.{arg}")
                said = f"{said}.{arg}"
                if not fromlist:
                    base = chain
            elif op in ("LOAD_ATTR", "LOAD_METHOD") and chain is not None:
                if arg in _LOOKS_UP_BY_NAME:
                    dynamic = arg
                chain, said = getattr(chain, arg, None), f"{said}.{arg}"
            elif op not in ("PRECALL", "CACHE", "PUSH_NULL", "COPY_FREE_VARS", "RESUME", "NOP", "EXTENDED_ARG",
                            "SWAP", "POP_TOP"):
                chain = None
                continue
            else:
                continue
            if isinstance(chain, types.ModuleType) and _holds(chain, answers):
                modules.append(chain)
            look(chain, said)
        if dynamic in ("globals", "vars", "locals"):   # the whole namespace, looked up by name
            modules += [v for v in namespace.values() if isinstance(v, types.ModuleType) and _holds(v, answers)]
        if dynamic and modules:
            found.append(f"{dynamic} on {modules[0].__name__} (a name made at run time)")
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                walk(const)

    walk(function.__code__)
    for name, cell in cells.items():
        if _filled(cell):
            look(cell.cell_contents, name)
    return found


def _filled(cell) -> bool:
    try:
        _ = cell.cell_contents    # an empty cell raises on reading
    except ValueError:
        return False
    return True


def own_work(function, *answers) -> None:
    """Fail (an ``AssertionError`` the check reports) when ``function`` is, wraps or calls one of the library's
    ``answers`` (objects: ``measure.sparsity``, ``F.conv2d``, ``nn.Conv2d``, ...): the exercise is to build the
    thing, and the check compares it with the library on cases of its own. An answer given as a string is
    a name refused wherever it is used (``"backward"``: any ``tensor.backward()``, which no import shows).

    It reads what the function does, not its text: the names its code uses are resolved through its globals
    and closures (an alias made anywhere, ``from ... import ... as``, a ``functools.wraps`` or ``partial``
    wrapper, a subclass, an instance, a helper function of the learner's that calls the answer, an import
    inside the function), and a name made at run time (``getattr`` on a module that holds an answer, ``eval``,
    ``exec``) is refused too. Plain variables, strings and comments never count."""
    name = getattr(function, "__name__", type(function).__name__)
    names = frozenset(a for a in answers if isinstance(a, str))
    answers = tuple(a for a in answers if not isinstance(a, str))
    if not callable(function):
        raise AssertionError(f"{name} should be a function, got {type(function).__name__}.")
    if any(_same(function, a) for a in answers):
        used = [f"{getattr(function, '__module__', '') or ''}.{name}".lstrip(".")]
    else:
        target = function.func if isinstance(function, functools.partial) else function
        target = getattr(target, "__func__", target)
        if isinstance(target, types.FunctionType):
            used = _uses(target, answers, set(), names)
        else:       # an object called like a function: a class, or an instance of one, of the learner's
            cls = target if isinstance(target, type) else type(target)
            seen: set = set()
            used = [u for method in (_methods(cls) if _learner_class(cls) else []) for u in _uses(method, answers, seen, names)]
            used += [f"{cls.__name__} (a subclass of {b.__name__})" for b in cls.__mro__[1:]
                     for a in answers if b is a]
    if used:
        listed = ", ".join(dict.fromkeys(used))
        raise AssertionError(f"{name} uses {listed}: write it yourself — the check compares your version with the "
                             "library's on cases of its own.")


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

"""The checks every public function makes of its numbers, written once: a bad value gets one clear message
that names the argument, what was expected and what was given.

numpy's numbers (``np.int64`` from ``np.arange``, ``np.float32`` from an array) and 0-d tensors count as
numbers; ``True`` and ``False`` never do, and a whole number must be one (``2.0`` is refused where a count
is expected, so that ``fit(epochs=2.0)`` fails at the call, not inside the training loop).
"""

from __future__ import annotations

import math
import numbers


def _plain(value):
    """A 0-d tensor or array as its Python number; anything else unchanged."""
    if hasattr(value, "ndim") and value.ndim == 0 and hasattr(value, "item"):
        return value.item()
    return value


def is_whole(value) -> bool:
    """True for an int (numpy's included), never for a bool or a float."""
    value = _plain(value)
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def whole_number(value, name: str, low: int = 1, high: int | None = None, expected: str | None = None) -> int:
    """``value`` as a Python int in ``[low, high]`` (``high`` None: no upper bound); else ``ValueError``
    naming ``name`` and what was expected (``expected``, default "a whole number >= low"). Returns the int."""
    value = _plain(value)
    if not is_whole(value) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{name} must be {expected or 'a whole number ' + bound}, got {value!r}.")
    return int(value)


def real_number(value, name: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, expected: str | None = None) -> float:
    """``value`` as a finite Python float within ``low``/``high`` (each bound inclusive unless ``*_open``;
    None: unbounded); else ``ValueError`` naming ``name`` and what was expected (``expected``, default said
    from the bounds). NaN and infinity are always refused."""
    value = _plain(value)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_"
    ok = ok and math.isfinite(float(value))
    if ok and low is not None:
        ok = float(value) > low if low_open else float(value) >= low
    if ok and high is not None:
        ok = float(value) < high if high_open else float(value) <= high
    if not ok:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
        bound = " and ".join(b for b in (lo, hi) if b)
        raise ValueError(f"{name} must be {expected or 'a finite number' + (' ' + bound if bound else '')}, "
                         f"got {value!r}.")
    return float(value)

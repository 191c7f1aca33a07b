"""Pytest's set-up for the whole tree: the lessons' solutions under nbval also try each exercise's wrong
answers (tests/exercise_misses.py), in the kernel that runs the lesson."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))

from exercise_misses import pytest_runtest_call  # noqa: E402,F401  (a hook: pytest finds it by its name)

"""Pytest's set-up for the whole tree: the lessons' solutions under nbval also try each exercise's wrong
answers (tests/exercise_misses.py), in the kernel that runs the lesson."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
pytest.register_assert_rewrite("exercise_misses")       # its asserts say what they compared

from exercise_misses import pytest_runtest_call, pytest_runtest_teardown  # noqa: E402,F401  (hooks: found by name)

"""The instructor's tools: the course's notebooks (student versions, executed solutions, their checks and
grading), its releases, its locked environment, its website and its reference networks. No lesson imports
them, so changing them never makes a solution stale.

    python -m course_lib.instructor student | solutions | check | grade | site | release | lock | references
"""

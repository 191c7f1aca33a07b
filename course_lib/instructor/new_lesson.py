"""``python -m course_lib.instructor new NN_name "Title"``: the skeleton of a new lesson source that already
passes ``make check``'s rules (CONTRIBUTING.md, "Adding a lesson", says what to do with it next).

The skeleton has the title with its Colab badge, the Colab set-up cell pinned to this release, the cell that
prints the profile and starts the exercises, one "predict, then run" question and one coding exercise (each
with its check cell and hint), and the summary. Replace its example content; keep its shape.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from .course import ROOT, NotebookError, lessons
from .notebooks import COLAB_MARKER, KEPT_METADATA
from .release import badge, colab_install

NAME = re.compile(r"^(\d\d)_[a-z0-9_]+$")

COLAB_CELL = (f"{COLAB_MARKER}: on Colab, install course_lib at this course release; elsewhere this does nothing.\n"
              "# Colab's own torch and torchvision are kept (course_lib's requirements are loose ranges).\n"
              "import os\n"
              "if \"COLAB_RELEASE_TAG\" in os.environ:   # set on every Colab runtime\n"
              "    {install}")


def skeleton(name: str, title: str, root: Path = ROOT):
    """The notebook (nbformat v4) of a new lesson ``name`` (e.g. ``"10_batch_norm"``) titled ``title``, for the
    course at ``root`` (its release pins the badge and the Colab cell)."""
    number = name[:2]
    check = new_code_cell(
        "# CHECK: predicted_parameters, the parameter count you predicted\n"
        "with exercises.check(\"predicted_parameters\"):\n"
        "    measured = sum(p.numel() for p in torch.nn.Conv2d(3, 8, kernel_size=3).parameters())\n"
        "    exercises.close(exercises.number(predicted_parameters, \"your prediction\"), measured,\n"
        "                    \"the parameters of Conv2d(3, 8, kernel_size=3)\")")
    check.metadata["exercise"] = {"name": "predicted_parameters",
                                  "hint": "Each of the 8 filters has 3 x 3 weights for each of the 3 input "
                                          "channels, and one bias."}
    code_check = new_code_cell(
        "# CHECK: relu against torch.relu, on random numbers\n"
        "with exercises.check(\"relu\"):\n"
        "    x = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))\n"
        "    exercises.close(relu(x), torch.relu(x), \"relu of a 5 x 7 tensor\")")
    code_check.metadata["exercise"] = {"name": "relu", "hint": "Keep the positive numbers, set the others to 0: "
                                                              "x.clamp(min=0) or torch.where."}
    cells = [
        new_markdown_cell(f"# {number} · {title}\n\n{badge(f'{name}.ipynb', root=root)}\n\n"
                          "What the learner does in this lesson, in one paragraph."),
        new_code_cell(COLAB_CELL.format(install=colab_install(root))),
        new_code_cell("import torch\n\nfrom course_lib import env, exercises\n\nprint(env.describe())\n"
                      "print(\"data: none (this skeleton reads no data set; say which data the lesson reads)\")\n"
                      f"exercises.start(\"{name}\", total=2)"),
        new_markdown_cell("## Predict, then run\n\nHow many parameters (weights and biases) does "
                          "`torch.nn.Conv2d(3, 8, kernel_size=3)` have? Write your number first, then run the "
                          "cells after the check."),
        new_code_cell("### BEGIN SOLUTION\npredicted_parameters = 224\n### END SOLUTION"),
        check,
        new_code_cell("conv = torch.nn.Conv2d(3, 8, kernel_size=3)\n"
                      "print(\"measured:\", sum(p.numel() for p in conv.parameters()))"),
        new_markdown_cell("## An exercise\n\nWrite `relu(x)`: the rectified linear unit, element by element."),
        new_code_cell("def relu(x: torch.Tensor) -> torch.Tensor:\n    \"\"\"max(x, 0) element by element; same shape "
                      "as x.\"\"\"\n    ### BEGIN SOLUTION\n    return x.clamp(min=0)\n    ### END SOLUTION"),
        code_check,
        new_markdown_cell("## Summary\n\n* What the learner measured, in one line each."),
        new_code_cell("# NBVAL_CHECK_OUTPUT\nexercises.summary()"),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    assert set(nb.metadata) <= set(KEPT_METADATA)
    return nb


def new_lesson(name: str, title: str, src: Path = ROOT / "notebooks") -> Path:
    """Write the skeleton of lesson ``name`` into ``src`` (``NN_name.ipynb``); returns its path. Raises
    ``NotebookError`` for a name that is not ``NN_words`` (two digits, lower-case words joined by ``_``) or
    whose number or file another lesson has."""
    name = name.removesuffix(".ipynb")
    if not NAME.match(name):
        raise NotebookError(f"A lesson's name is two digits and lower-case words joined by _ (e.g. 10_batch_norm), "
                            f"got {name!r}.")
    taken = [p.stem for p in lessons(src) if p.stem[:2] == name[:2]]
    if taken:
        raise NotebookError(f"Lesson number {name[:2]} is taken by {taken[0]}: choose the next free number.")
    path = Path(src) / f"{name}.ipynb"
    nbformat.write(skeleton(name, title, Path(src).resolve().parent), path)
    return path


def main(argv=None) -> int:
    """The command line: 0 when written, 1 with the reason."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m course_lib.instructor new",
                                     description="Write the skeleton of a new lesson into notebooks/.")
    parser.add_argument("name", help="NN_words, e.g. 10_batch_norm")
    parser.add_argument("title", help="the lesson's title, e.g. \"Batch norm, by hand\"")
    args = parser.parse_args(argv)
    try:
        path = new_lesson(args.name, args.title)
    except NotebookError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path.relative_to(ROOT)}: now follow CONTRIBUTING.md, \"Adding a lesson\"")
    return 0

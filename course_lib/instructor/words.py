"""The words of a lesson and its numbers: every number in an executed solution's markdown must be printed
by the lesson (in its outputs or code) or be a sourced fact (:data:`SOURCED_NUMBERS`), so that the words
cannot drift from what the lesson measures."""

from __future__ import annotations

import re


# Numbers a lesson may state in its words without printing them: dates, figures of the papers and of the
# architectures it quotes, lesson numbers. Every other number in a solution's markdown must appear in that
# lesson's outputs or code, so that the words cannot drift from what the lesson measures.
SOURCED_NUMBERS = frozenset("""
00 01 02 03 04 05 06 07 08 1989 1993 1998 2009 2012 2013 2014 2015 2016 2017 2018 2019 2022
2,578 3,246 9,760 1.7 0.95 0.8 15.3 16.4 26.2 18.2 60,000 10,000 70,000 5,000 4,000 1,000 60 1.2 580 3
60,965,224 61 90 224 256 227 11 96 48 4096 384 1,930 104 512 120 84 16 20 28 163 255 1024 2048 29400
25,450 3,190 5e-4 1e-4 0.75 0.5 10 12 13 32 100 50 86 25 192 55 27 6 64 0.61 7,291
""".split())

NUMBER = re.compile(r"(?<![\w.$])\d[\d,]*(?:\.\d+)?(?:e-?\d+)?")


def unsupported_numbers(nb) -> list[tuple[int, str]]:
    """The numbers in a solution notebook's markdown that are neither in its outputs or code nor in
    :data:`SOURCED_NUMBERS` (whole numbers below 10 are words, not measurements): ``[(cell, number)]``.
    Links, inline code and math are left out of the words."""
    said = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            said.append(cell.source)
            for out in cell.get("outputs", []):
                said.append(out.get("text", "") if isinstance(out.get("text", ""), str) else "".join(out["text"]))
                said.extend(v for k, v in out.get("data", {}).items() if k.startswith("text/") and isinstance(v, str))
    value = lambda n: float(n.rstrip(",").replace(",", ""))     # 0.20 is 0.2; 60,000 is 60000
    printed = {value(n) for n in NUMBER.findall("\n".join(said))}
    sourced = {value(n) for n in SOURCED_NUMBERS}
    found = []
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"\]\([^)]*\)|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|https?://\S+", " ", cell.source, flags=re.S)
        for number in NUMBER.findall(text):
            n = number.rstrip(",")
            if value(n) in printed or value(n) in sourced or (n.isdigit() and int(n) < 10):
                continue
            found.append((i, n))
    return found



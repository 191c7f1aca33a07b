"""JupyterLab as `make lab` opens it: a lesson with its table of contents, and no pop-up in the way."""

import re

from lab_helpers import assert_clean


def test_a_lesson_opens_with_its_table_of_contents(lab, page):
    """The lesson's headings are listed in JupyterLab's table of contents, and a click on one scrolls
    the notebook to it."""
    page.goto(f"{lab['base']}/lab/tree/02_lenet1_digits.ipynb?token={lab['token']}")
    page.wait_for_selector(".jp-Notebook .jp-MarkdownOutput h2", timeout=60_000)
    page.evaluate("window.jupyterapp.commands.execute('toc:show-panel')")
    toc = page.locator(".jp-TableOfContents-tree")
    toc.wait_for(timeout=30_000)
    entry = toc.locator("span", has_text=re.compile("How much of the digit does one unit see"))
    entry.first.wait_for(timeout=30_000)
    headings = toc.locator(".jp-tocItem").count()
    assert headings >= 10, f"only {headings} entries in the table of contents"
    entry.first.click()
    target = page.locator(".jp-Notebook h2", has_text="How much of the digit does one unit see").first
    page.wait_for_function("el => { const r = el.getBoundingClientRect(); "
                           "return r.top >= 0 && r.top < window.innerHeight; }",
                           arg=target.element_handle(), timeout=10_000)
    page.shot("toc")
    assert_clean(page)

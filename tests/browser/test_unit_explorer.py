"""Lesson 08's unit explorer in JupyterLab in a real browser: pick a unit, press make, see the image."""

import json

from lab_helpers import assert_clean, notebook, open_and_run

EXPLORER = ".unit-explorer"
NOTEBOOK = notebook(
    "from course_lib import references\n"
    "from course_lib.widgets import UnitExplorer\n"
    "alexnet, record = references.load_network('alexnet-imagenette')",
    "explorer = UnitExplorer(alexnet, size=64)\nexplorer.steps.value = 10\nexplorer",
)


def _state(page):
    return page.evaluate(f"""() => {{
        const w = document.querySelector("{EXPLORER}");
        const note = w.querySelector('.unit-numbers');
        return {{note: note ? note.textContent : '', imgs: [...w.querySelectorAll('img')].map(i => i.src)}};
    }}""")


def test_make_an_image_for_a_unit_then_for_another(lab, page):
    (lab["root"] / "unit_explorer.ipynb").write_text(json.dumps(NOTEBOOK))
    open_and_run(page, lab, "unit_explorer.ipynb", timeout_s=120)
    page.wait_for_selector(EXPLORER, timeout=60_000)
    explorer = page.locator(EXPLORER)
    explorer.scroll_into_view_if_needed()
    explorer.locator("button:text-is('make')").click()
    page.wait_for_function(f"""() => document.querySelector("{EXPLORER} .unit-numbers") !== null""", timeout=60_000)
    first = _state(page)
    assert "act1 unit 0:" in first["note"] and "in 10 steps" in first["note"], first["note"]
    page.shot("1-made")

    handle = explorer.locator(".widget-slider:has(.widget-label:text-is('unit')) .noUi-handle")
    handle.click()
    page.keyboard.press("ArrowRight")
    explorer.locator("button:text-is('make')").click()
    page.wait_for_function(f"""() => document.querySelector("{EXPLORER} .unit-numbers").textContent
                               .includes('unit 1:')""", timeout=60_000)
    second = _state(page)
    assert second["imgs"][0] != first["imgs"][0], "another unit must get another image"
    page.shot("2-another-unit")
    assert_clean(page)

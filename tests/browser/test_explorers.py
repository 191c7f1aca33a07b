"""Lesson 03's activation explorer in JupyterLab in a real browser."""

from lab_helpers import assert_clean, open_and_run

EXPLORER = ".widget-vbox:has(> .widget-hbox .explorer-stats)"


def _maps_src(page):
    return page.evaluate(f"""() => document.querySelectorAll("{EXPLORER}")[0]
                              .querySelectorAll('img')[1].src""")


def test_activation_explorer_epoch_slider_and_layer(lab, page):
    open_and_run(page, lab, "03_training_dynamics.ipynb", timeout_s=300)
    page.wait_for_selector(f"{EXPLORER} img", timeout=60_000)
    explorer = page.locator(EXPLORER).first
    explorer.scroll_into_view_if_needed()
    page.shot("1-rendered")
    assert_clean(page)

    # the layer dropdown: conv1 -> act2
    before = _maps_src(page)
    stats = explorer.locator(".explorer-stats").inner_text()
    explorer.locator("select").first.select_option("act2")
    page.wait_for_function(f"""(old) => document.querySelectorAll("{EXPLORER}")[0]
                               .querySelectorAll('img')[1].src !== old""", arg=before, timeout=10_000)
    page.wait_for_function(f"""() => document.querySelector("{EXPLORER} .explorer-stats")
                               .textContent.includes("act2")""", timeout=10_000)
    assert explorer.locator(".explorer-stats").inner_text() != stats

    # the epoch slider: from the last epoch one step back
    handle = explorer.locator(".widget-slider:has(.widget-label:text-is('epoch')) .noUi-handle")
    before = _maps_src(page)
    handle.click()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"""(old) => document.querySelectorAll("{EXPLORER}")[0]
                               .querySelectorAll('img')[1].src !== old""", arg=before, timeout=10_000)
    page.shot("2-changed")
    assert_clean(page)

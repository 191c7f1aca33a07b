"""The sliding-filter widget of lesson 01, in JupyterLab in a real browser."""

import json

from lab_helpers import ARTIFACTS, assert_clean, open_and_run

PLAYGROUND = ".widget-vbox:has(.conv-sum)"


def _slider(page, label):
    return page.locator(f"{PLAYGROUND} .widget-slider:has(.widget-label:text-is('{label}')) .noUi-handle")


def _state(page):
    return page.evaluate(f"""() => {{
        const root = document.querySelector("{PLAYGROUND}");
        return {{ sum: root.querySelector('.conv-sum').textContent,
                 images: [...root.querySelectorAll('img')].map(i => i.src) }}; }}""")


def test_playground_slider_moves_the_filter(lab, page):
    open_and_run(page, lab, "01_images_and_convolution.ipynb")
    page.wait_for_selector(f"{PLAYGROUND} img", timeout=60_000)
    handle = _slider(page, "column")
    handle.scroll_into_view_if_needed()
    page.shot("1-rendered")
    assert_clean(page)
    before = _state(page)
    assert "output[" in before["sum"] and len(before["images"]) == 2
    row, col = page.evaluate(f"""() => document.querySelector("{PLAYGROUND} .conv-sum").textContent
                                .match(/output\\[(\\d+), (\\d+)\\]/).slice(1).map(Number)""")

    handle.click()
    latencies = []
    for step in range(1, 6):
        # time from the key press to the new output picture appearing
        page.evaluate(f"""() => {{
            const img = document.querySelectorAll("{PLAYGROUND} img")[1];
            window.__changed = null;
            new MutationObserver((m, o) => {{ window.__changed = performance.now(); o.disconnect(); }})
                .observe(img, {{attributes: true, attributeFilter: ['src']}});
            window.__pressed = performance.now(); }}""")
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => window.__changed !== null", timeout=10_000)
        latencies.append(page.evaluate("() => window.__changed - window.__pressed"))
        page.wait_for_function(f"""() => document.querySelector("{PLAYGROUND} .conv-sum")
                                     .textContent.includes("output[{row}, {col + step}]")""", timeout=10_000)
    after = _state(page)
    page.shot("2-moved")
    assert after["sum"] != before["sum"] and f"output[{row}, {col + 5}]" in after["sum"]
    assert after["images"][0] != before["images"][0] and after["images"][1] != before["images"][1]
    assert_clean(page)
    latencies.sort()
    (ARTIFACTS / "playground_latency.json").write_text(json.dumps({"ms": latencies}))
    print(f"browser: slider move -> new output image, median {latencies[len(latencies) // 2]:.0f} ms")


def test_playground_bad_kernel_message(lab, page):
    open_and_run(page, lab, "01_images_and_convolution.ipynb")
    page.wait_for_selector(f"{PLAYGROUND} textarea", timeout=60_000)
    box = page.locator(f"{PLAYGROUND} textarea")
    box.fill("1 2\n3 4")
    box.press("Tab")  # ipywidgets sends the text on change
    page.wait_for_selector(f"{PLAYGROUND} .conv-error", timeout=10_000)
    assert "odd size" in page.inner_text(f"{PLAYGROUND} .conv-error")
    page.shot("bad-kernel")
    assert "Traceback" not in page.inner_text(".jp-Notebook")


def _sum_position(page):
    return page.evaluate(f"""() => document.querySelector("{PLAYGROUND} .conv-sum").textContent
                            .match(/output\\[(\\d+), (\\d+)\\]/).slice(1).map(Number)""")


def test_playground_corner_then_stride_and_padding(lab, page):
    """Issue 12's report: move to the bottom-right corner, then change the stride: the widget must keep
    updating (the position clamps to the new, smaller output) and no traceback may appear."""
    open_and_run(page, lab, "01_images_and_convolution.ipynb")
    page.wait_for_selector(f"{PLAYGROUND} img", timeout=60_000)
    for label in ("row", "column"):
        handle = _slider(page, label)
        handle.scroll_into_view_if_needed()
        handle.click()
        page.keyboard.press("End")
    page.wait_for_function(f"""() => {{ const m = document.querySelector("{PLAYGROUND} .conv-sum")
        .textContent.match(/output\\[(\\d+), (\\d+)\\]/); return m && +m[1] > 100 && +m[2] > 100; }}""",
                           timeout=10_000)
    corner = _sum_position(page)
    for label, presses in (("stride", 2), ("padding", 3)):
        before = _state(page)
        handle = _slider(page, label)
        handle.click()
        for _ in range(presses):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(f"""(old) => document.querySelector("{PLAYGROUND} .conv-sum").textContent !== old""",
                               arg=before["sum"], timeout=10_000)
        # the sum and the output picture arrive as separate widget messages: wait for the picture too
        page.wait_for_function(f"""(old) => document.querySelectorAll("{PLAYGROUND} img")[1].src !== old""",
                               arg=before["images"][1], timeout=10_000)
    row, col = _sum_position(page)
    # stride 3 roughly thirds the output: the position was clamped into it
    assert row < corner[0] and col < corner[1] and row == col
    page.shot("corner-stride-padding")
    assert_clean(page)

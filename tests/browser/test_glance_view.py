"""The whole network at a glance in JupyterLab in a real browser: it follows the pen on lesson 02's canvas,
then redraws while LeNet-1 trains, and its slider goes back through the snapshots."""

import json

from lab_helpers import assert_clean, notebook, open_and_run
from test_digit_canvas import _draw

VIEW = ".glance-view"
NOTEBOOK = notebook(
    "import torch\n"
    "from course_lib import digits, env, models, train\n"
    "from course_lib.widgets import DigitCanvas, GlanceView\n"
    "x, y = digits.for_profile('train', env.profile('smoke'))\n"
    "torch.manual_seed(0)\n"
    "net = models.LeNet1()",
    "canvas = DigitCanvas(net)\ncanvas",
    "glance = GlanceView(net, x[0]).follow(canvas)\nglance",
    "train.fit(net, (x, y), epochs=1, lr=0.3, progress=False, device='cpu', probe=x[:1],\n"
    "          snapshot_steps=range(5, 60, 5), on_snapshot=glance.add_snapshot);",
)


def _glance(page):
    return page.evaluate(f"""() => {{
        const w = document.querySelector("{VIEW}");
        const answer = w.querySelector('.glance-answer');
        const slider = w.querySelector('.widget-readout');
        return {{answer: answer ? answer.textContent : '', imgs: [...w.querySelectorAll('img')].map(i => i.src),
                 titles: [...w.querySelectorAll('.glance-title')].map(t => t.textContent),
                 readout: slider ? slider.textContent : ''}};
    }}""")


def test_the_glance_follows_the_pen_then_training(lab, page):
    (lab["root"] / "glance.ipynb").write_text(json.dumps(NOTEBOOK))
    open_and_run(page, lab, "glance.ipynb", timeout_s=180)
    page.wait_for_selector(f"{VIEW} .glance-answer", timeout=60_000)
    trained = _glance(page)
    assert [t.split(" ")[0] for t in trained["titles"]][:3] == ["input28×28", "frame28×28", "conv1"]
    assert "step" in trained["readout"], f"after training the slider names a snapshot: {trained['readout']!r}"
    page.shot("1-after-training")

    canvas = page.locator(".digit-canvas canvas").last
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    _draw(page, box, [(140, 40 + 10 * i) for i in range(21)])
    page.wait_for_function(f"""(old) => document.querySelector("{VIEW} img").src !== old""",
                           arg=trained["imgs"][0], timeout=20_000)
    drawn = _glance(page)
    assert drawn["imgs"][2:] != trained["imgs"][2:], "every layer's column redraws for the drawn digit"
    page.shot("2-drawn")

    # the slider back to the first snapshot (step 0): the untrained network reads the same digit differently
    handle = page.locator(f"{VIEW} .slider-container .ui-slider-handle, {VIEW} .noUi-handle").first
    handle.focus()
    page.keyboard.press("Home")
    page.wait_for_function(f"""() => document.querySelector("{VIEW} .widget-readout").textContent.includes('step 0')""",
                           timeout=20_000)
    # the readout moves in the browser at once; the layers' pictures come back from the kernel after it
    page.wait_for_function(f"""(old) => document.querySelectorAll("{VIEW} img")[2].src !== old""",
                           arg=drawn["imgs"][2], timeout=20_000)
    assert _glance(page)["imgs"][2:] != drawn["imgs"][2:]
    page.shot("3-untrained")
    assert_clean(page)

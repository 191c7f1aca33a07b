"""Lesson 02's draw-a-digit canvas in JupyterLab in a real browser: drawn with the mouse."""

import json
import math

from lab_helpers import assert_clean, notebook, open_and_run

CANVAS = ".digit-canvas"
NOTEBOOK = notebook(
    "import torch\n"
    "from course_lib import digits, env, models, train\n"
    "from course_lib.widgets import DigitCanvas\n"
    "x, y = digits.for_profile('train', env.profile('smoke'))\n"
    "torch.manual_seed(0)\n"
    "net = models.LeNet1()\n"
    "train.fit(net, (x, y), epochs=2, lr=0.3, progress=False, device='cpu');",
    "canvas = DigitCanvas(net)\ncanvas",
)


def _draw(page, box, points):
    """Press the mouse at the first point, drag through the others, release: coordinates in canvas pixels."""
    sx, sy = box["width"] / 280, box["height"] / 280
    to_page = [(box["x"] + x * sx, box["y"] + y * sy) for x, y in points]
    page.mouse.move(*to_page[0])
    page.mouse.down()
    for p in to_page[1:]:
        page.mouse.move(*p, steps=2)
    page.mouse.up()


def _state(page):
    return page.evaluate(f"""() => {{
        const w = document.querySelector("{CANVAS}");
        const answer = w.querySelector('.digit-answer');
        const bars = w.querySelector('.prob-bars');
        const imgs = [...w.querySelectorAll('img')].map(i => i.src);
        return {{answer: answer ? answer.textContent : '', bars: bars ? bars.textContent : '', imgs}};
    }}""")


def test_draw_a_digit_with_the_mouse(lab, page):
    (lab["root"] / "draw_a_digit.ipynb").write_text(json.dumps(NOTEBOOK))
    open_and_run(page, lab, "draw_a_digit.ipynb", timeout_s=120)
    page.wait_for_selector(f"{CANVAS} canvas", timeout=60_000)
    page.wait_for_function(f"""() => document.querySelector("{CANVAS} .digit-answer")""", timeout=30_000)
    assert "Draw a digit" in _state(page)["answer"]
    canvas = page.locator(f"{CANVAS} canvas").last
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box and box["width"] > 100

    # a one: a vertical stroke
    _draw(page, box, [(140, 40 + 10 * i) for i in range(21)])
    page.wait_for_function(f"""() => document.querySelector("{CANVAS} .digit-prediction")""", timeout=20_000)
    one = _state(page)
    assert one["bars"].count("%") == 10, "ten class probabilities"
    assert all(src.startswith("data:image/png") or src.startswith("blob:") for src in one["imgs"])
    page.shot("1-one")

    # clear, then a zero: the answer, the probabilities and the maps change
    page.locator(f"{CANVAS} button", has_text="clear").click()
    page.wait_for_function(f"""() => document.querySelector("{CANVAS} .digit-answer").textContent
                               .includes('Draw a digit')""", timeout=20_000)
    _draw(page, box, [(140 + 70 * math.sin(a / 40 * 2 * math.pi), 140 - 100 * math.cos(a / 40 * 2 * math.pi))
                      for a in range(41)])
    page.wait_for_function(f"""(old) => {{ const b = document.querySelector("{CANVAS} .prob-bars");
                               return b && b.textContent !== old; }}""", arg=one["bars"], timeout=20_000)
    zero = _state(page)
    assert zero["answer"] != one["answer"], f"a 1 and a 0 read the same: {zero['answer']}"
    assert zero["imgs"][1:] != one["imgs"][1:], "the feature maps must change with the drawing"
    page.shot("2-zero")

    # shift the input: the note says so, and the input picture changes
    page.locator(f"{CANVAS} button", has_text="▶").click()
    page.wait_for_function(f"""() => document.querySelector("{CANVAS} .digit-answer").textContent
                               .includes('shifted +2')""", timeout=20_000)
    assert _state(page)["imgs"][0] != zero["imgs"][0]
    page.shot("3-shifted")
    assert_clean(page)

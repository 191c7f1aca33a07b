"""The site's renderer on small MyST trees (no Node.js needed), and the widgets' static pictures."""

import base64
import io

import ipywidgets as W
import numpy as np
import pytest
from PIL import Image

from course_lib import viz, widgets
from course_lib.instructor import site


def page(slug="lenet1-digits", notebook="02_lenet1_digits.ipynb"):
    exports = [{"format": "ipynb", "filename": notebook, "url": f"/{notebook}"}] if notebook else []
    return site.Page(slug, "A lesson", {"frontmatter": {"exports": exports}, "mdast": {}}, is_index=not notebook)


def renderer(p=None):
    return site.Renderer(p or page(), {"02_lenet1_digits.ipynb": "lenet1-digits", "00_welcome.ipynb": "welcome"},
                         "https://github.com/o/r/blob/v1.0.0")


def widget_output(text, picture=False):
    data = {"text/plain": {"content": text, "content_type": "text/plain"},
            "application/vnd.jupyter.widget-view+json": {"content": "{}", "content_type": "application/json"}}
    if picture:
        data["image/png"] = {"content_type": "image/png", "hash": "abc", "path": "/abc.png"}
    return {"type": "output", "jupyter_data": {"output_type": "display_data", "data": data}}


def test_links_to_lessons_become_pages_and_repository_files_point_at_the_tag():
    r = renderer()
    assert r.href("notebooks/00_welcome.ipynb") == "../welcome/index.html"
    assert r.href("02_lenet1_digits.ipynb#exercise-1") == "../lenet1-digits/index.html#exercise-1"
    assert r.href("README.md") == "../index.html"
    assert r.href("data/README.md") == "https://github.com/o/r/blob/v1.0.0/data/README.md"
    assert r.href("./.ci/run") == "https://github.com/o/r/blob/v1.0.0/.ci/run"
    assert r.href("https://captum.ai") == "https://captum.ai" and r.href("#top") == "#top"
    assert renderer(page("index", None)).href("notebooks/00_welcome.ipynb") == "welcome/index.html"


def test_outputs_show_their_richest_static_form():
    r = renderer()
    figure = {"output_type": "display_data", "data": {
        "image/png": {"path": "/f1.png"}, "text/plain": {"content": "<Figure size 640x480 with 1 Axes>"}}}
    assert r.output(figure) == ('<div class="output figure"><img src="../build/f1.png" '
                                'alt="a figure of the lesson"></div>')
    assert r.assets == {"f1.png"}
    assert r.node(widget_output("VBox(children=(...))", picture=True)).count("<img") == 1
    # a progress bar shows its text as stored: its finished state (solutions.finish_progress_bars)
    assert r.node(widget_output("training: 100%|##########| 5/5 [00:01<00:00]")) == \
        '<pre class="output progress">training: 100%|##########| 5/5 [00:01&lt;00:00]</pre>'
    assert "interactive widget" in r.node(widget_output("VBox(children=(...))"))
    assert r.output({"output_type": "stream", "name": "stdout", "text": "\x1b[31mred\x1b[0m <b>\n"}) == \
        '<pre class="output stdout">red &lt;b&gt;\n</pre>'
    assert "ValueError" in r.output({"output_type": "error", "traceback": ["\x1b[0;31mValueError\x1b[0m: x"]})


def test_tree_rendering_escapes_text_and_fails_on_unknown_nodes():
    r = renderer()
    tree = {"type": "root", "children": [
        {"type": "heading", "depth": 1, "html_id": "a-b", "children": [{"type": "text", "value": "A < B"}]},
        {"type": "paragraph", "children": [{"type": "inlineCode", "value": "x<y"}]},
        {"type": "math", "value": "x^2", "html": "<span class=\"katex\">x²</span>"},
        {"type": "image", "url": "/undefined", "alt": "Open In Colab"},
    ]}
    out = r.node(tree)
    assert '<h2 id="a-b">A &lt; B' in out and "<code>x&lt;y</code>" in out
    assert '<div class="math"><span class="katex">x²</span></div>' in out
    assert '<span class="badge">Open In Colab</span>' in out  # a remote picture is not fetched
    tree["children"][1]["children"].append({"type": "mystery", "children": [{"type": "text", "value": "lost?"}]})
    with pytest.raises(site.SiteError, match="page 'lenet1-digits' holds a MyST node of type 'mystery'.*n_mystery"):
        r.node(tree)


def test_build_says_what_is_missing(tmp_path, monkeypatch):
    (tmp_path / "solutions").mkdir()
    with pytest.raises(site.SiteError, match="no executed lessons.*make solutions"):
        site.book_sources(tmp_path)
    monkeypatch.setattr(site.shutil, "which", lambda name: None)
    with pytest.raises(site.SiteError, match="needs Node.js"):
        site.build(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


class TwoPictures(widgets.WidgetView):
    def __init__(self, sizes):
        self.widget = W.VBox([W.HBox([W.Image(value=viz.to_png(np.full((h, w), 0.5)), format="png")
                                      for h, w in sizes]), W.IntSlider()])


def test_widget_snapshot_lays_out_its_pictures_and_is_published_beside_the_widget(monkeypatch):
    view = TwoPictures([(20, 30), (40, 10)])
    sheet = Image.open(io.BytesIO(view.snapshot()))
    assert sheet.size == (30 + 8 + 10, 40)
    wide = TwoPictures([(10, 600), (10, 600)])
    assert Image.open(io.BytesIO(wide.snapshot())).size == (600, 10 + 8 + 10)  # wraps past SNAPSHOT_WIDTH
    bare = type("Bare", (widgets.WidgetView,), {"widget": W.VBox([W.IntSlider()])})()
    assert widgets.WidgetView.snapshot(bare) is None
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    view._ipython_display_()
    (bundle, raw), = shown
    assert raw and set(bundle) == {"text/plain", "application/vnd.jupyter.widget-view+json", "image/png"}
    assert base64.b64decode(bundle["image/png"]) == view.snapshot()

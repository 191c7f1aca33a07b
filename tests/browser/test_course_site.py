"""The course site (`make site`) in Chromium, served from a loopback port: every page is visited and
checked for missing images, broken internal links, JavaScript errors and lessons without their figures."""

import contextlib
import functools
import http.server
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from playwright.sync_api import expect

from course_lib.instructor import course, release, site

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("node") is None,
                                reason="site tests SKIPPED: Node.js is not installed (Jupyter Book 2 needs it)")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The site built from this tree's README and solutions: the folder of its pages."""
    return site.build(ROOT, tmp_path_factory.mktemp("site") / "site")


@contextlib.contextmanager
def serve(folder: Path):
    """Serve ``folder`` on a free loopback port; yields the base address."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def figures_in(notebook: Path) -> int:
    """How many pictures a lesson's executed notebook holds: its figures and its widgets' pictures."""
    nb = nbformat.read(notebook, 4)
    return sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


def problems_on(page, base: str, folder: Path, path: str, figures: int | None = None) -> list[str]:
    """Visit ``base + path`` and list what is wrong there: failed requests, JavaScript errors, images
    that did not load, internal links to a missing page or anchor, and (``figures``) a lesson whose
    page shows another number of figures than its notebook holds."""
    problems, failed = [], []
    page.errors.clear()
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(base + path, wait_until="load")
    page.wait_for_load_state("networkidle")
    problems += [f"{path}: request failed: {f}" for f in failed]
    problems += [f"{path}: JavaScript error: {e}" for e in page.errors]
    loaded = "els => els.map(e => [e.getAttribute('src'), e.complete && e.naturalWidth > 0])"
    for src, ok in page.eval_on_selector_all("img", loaded):
        if not ok:
            problems.append(f"{path}: image did not load: {src}")
    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
        if not href.startswith(base):
            continue
        parts = urlsplit(href)
        target = folder / parts.path.lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"{path}: broken link: {href}")
        elif parts.fragment and f'id="{parts.fragment}"' not in target.read_text(errors="replace"):
            problems.append(f"{path}: link to a missing anchor: {href}")
    if figures is not None:
        shown = page.locator(".output.figure img").count()
        if shown != figures:
            problems.append(f"{path}: shows {shown} figures, its notebook holds {figures}")
    return problems


def site_pages(page, base: str) -> list[str]:
    """The pages in the site's table of contents, as paths from its root."""
    page.goto(base + "index.html")
    return [h.replace(base, "") for h in page.eval_on_selector_all(".toc a", "els => els.map(e => e.href)")]


def test_every_page_loads_whole_with_its_figures_and_colab_link(built, page):
    repo, tag = release.release_info(ROOT)
    lessons = course.lessons(ROOT / "solutions")
    with serve(built) as base:
        pages = site_pages(page, base)
        assert pages[0] == "index.html" and len(pages) == len(lessons) + 1
        problems = problems_on(page, base, built, "index.html")
        for path, notebook in zip(pages[1:], lessons):
            problems += problems_on(page, base, built, path, figures_in(notebook))
            colab = f"https://colab.research.google.com/github/{repo}/blob/{tag}/{{}}/{notebook.name}"
            assert page.locator("a.button.colab").get_attribute("href") == colab.format("solutions")
            assert page.locator("a.button.colab-student").get_attribute("href") == colab.format("student")
            assert page.locator("a[download]").get_attribute("download") == notebook.name
            assert page.locator("h1").inner_text() == page.locator('.toc a[aria-current="page"]').inner_text()
        page.shot("lesson")
    assert problems == []
    assert sum(figures_in(n) for n in lessons) >= 20, "the lessons' figures are missing from the solutions"


def test_widgets_show_their_static_picture(built, page):
    """Lesson 01's convolution playground is a live widget in Jupyter; on the site its picture shows."""
    with serve(built) as base:
        page.goto(base + "images-and-convolution/index.html")
        pictures = page.locator(".output.figure img")
        notes = page.locator(".widget-note")
        assert notes.count() == 0, "a widget without its static picture"
        assert pictures.count() == figures_in(ROOT / "solutions" / "01_images_and_convolution.ipynb")


def test_search_finds_sections_and_their_links_work(built, page):
    with serve(built) as base:
        page.goto(base + "index.html")
        page.fill("#search", "receptive field")
        results = page.locator("#search-results a")
        results.first.wait_for()
        assert results.count() >= 3
        href = results.first.get_attribute("href")
        results.first.click()
        page.wait_for_load_state("load")
        assert "receptive" in page.locator("main").inner_text().lower(), href
        page.fill("#search", "zzzz-not-in-the-course")
        expect(page.locator("#search-results")).to_have_text("Nothing found.")
        assert page.errors == []


def test_math_is_typeset(built, page):
    """MyST typesets the lessons' math (KaTeX, with MathML that the browser draws)."""
    with serve(built) as base:
        found, raw = [], []
        for path in site_pages(page, base):
            page.goto(base + path)
            for box in page.locator(".math math").all():
                found.append(box.bounding_box()["height"])
            text = page.inner_text("main")
            raw += [path for tex in ("$$", "\\frac", "\\times") if tex in text]
        # a lone x-height letter such as $m$ is drawn 8 px tall; an untypeset formula has no box at all
        assert found and all(h >= 6 for h in found) and max(found) > 20, found
        assert raw == [], f"TeX left as text on {raw}"


def test_the_checks_fail_on_a_broken_site(built, page, tmp_path):
    """The control: a site with a figure deleted, a broken link and a script error is caught."""
    broken = tmp_path / "html"
    shutil.copytree(built, broken)
    lesson = broken / "images-and-convolution" / "index.html"
    text = lesson.read_text()
    figure = re.search(r'<div class="output figure"><img src="\.\./(build/[^"]+)"', text).group(1)
    (broken / figure).unlink()
    lesson.write_text(text.replace("</main>", '<a href="../nowhere/index.html">x</a><a href="#no-such-anchor">y</a>'
                                              "<script>throw new Error('broken')</script></main>"))
    with serve(broken) as base:
        problems = problems_on(page, base, broken, "images-and-convolution/index.html",
                               figures_in(ROOT / "solutions" / "01_images_and_convolution.ipynb") + 1)
    text = "\n".join(problems)
    for expected in ("image did not load", "request failed: 404", "broken link", "missing anchor",
                     "JavaScript error", "shows"):
        assert expected in text, (expected, problems)

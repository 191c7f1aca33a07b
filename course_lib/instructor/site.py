"""The course website: ``make site`` builds a static site from the README and the executed solution
notebooks with Jupyter Book 2 (``python -m course_lib.instructor site build``), into ``build/site/html``.

Jupyter Book (the MyST engine) reads the notebooks, stores their figures, typesets the math and writes
the search index. It then hands the pages to its site template's ``render`` command. Jupyter Book's
own ``book-theme`` is downloaded from api.mystmd.org at build time, which a machine with only package
registries cannot reach, so the course's template is this module: ``python -m course_lib.instructor site render``
turns each page's MyST tree into one HTML page with the table of contents, search, "open in Colab"
links, and each widget's static picture (``viz.WidgetView`` stores one beside the live widget).
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from . import release
from .course import ROOT, lessons
from .solutions import PROGRESS_BAR, WIDGET_VIEW
STATIC = Path(__file__).resolve().parent / "site_static"  # site.css, site.js
# The richest form of an output that a page without a kernel can show, best first.
MIME_ORDER = ("image/png", "image/jpeg", "image/svg+xml", "image/gif", "text/html", "text/plain")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TEMPLATE_YML = """jtex: v1
title: ConvNet course site
description: The course's own static renderer (course_lib.instructor.site).
build:
  render: {command}
"""


# MyST nodes that are one HTML element around their children ("": the children alone), or one empty element.
SIMPLE_TAGS = {"root": "", "paragraph": "p", "strong": "strong", "emphasis": "em", "delete": "del",
               "blockquote": "blockquote", "listItem": "li", "tableRow": "tr",
               # MyST turns simple math such as $2^{0.75}$ into text with a superscript in a span
               "span": "span", "superscript": "sup", "subscript": "sub"}
EMPTY_TAGS = {"break": "br", "thematicBreak": "hr"}


class SiteError(RuntimeError):
    """The site cannot be built (a missing tool or lesson, or a failed Jupyter Book run)."""


# ----------------------------------------------------------------------------------------- build

def book_sources(root: Path = ROOT) -> list[Path]:
    """The executed lessons ``solutions/NN_*.ipynb`` that the site shows, in order."""
    found = lessons(Path(root) / "solutions")
    if not found:
        raise SiteError(f"no executed lessons in {Path(root) / 'solutions'}: run `make solutions` first")
    return found


def myst_config(title: str, lessons: list[str], template: Path) -> str:
    """The ``myst.yml`` of the book: the README as its index page, then the lessons in order."""
    toc = "\n".join(f"    - file: {name}" for name in ["index.md", *lessons])
    return (f"version: 1\nproject:\n  title: {json.dumps(title)}\n  toc:\n{toc}\n"
            f"site:\n  template: {json.dumps(str(template))}\n")


def build(root: Path = ROOT, out: Path | None = None) -> Path:
    """Build the site of the course tree ``root`` into ``out`` (default ``root/build/site``) and return
    the folder of its pages, ``out/html`` (``index.html``, one ``<slug>/index.html`` per lesson).
    Raises ``SiteError`` when Node.js is missing or Jupyter Book fails; a failed build leaves the last
    good site in place (the new one is made beside it and moved in only when complete)."""
    root = Path(root).resolve()
    out = Path(out or root / "build" / "site").resolve()
    if shutil.which("node") is None:
        raise SiteError("Jupyter Book 2 needs Node.js (18 or newer) on the PATH: install it, then run make site")
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    book, template = work / "book", work / "template"
    book.mkdir(parents=True)
    template.mkdir()
    lessons = book_sources(root)
    for path in lessons:
        shutil.copy2(path, book / path.name)
    readme = (root / "README.md").read_text()
    (book / "index.md").write_text(readme)
    title = re.search(r"^# (.+)$", readme, re.M)
    title = title.group(1).split(" — ")[0] if title else "ConvNet course"
    (book / "myst.yml").write_text(myst_config(title, [p.name for p in lessons], template))
    command = f"{sys.executable} -m course_lib.instructor site render --root {root}"
    (template / "template.yml").write_text(TEMPLATE_YML.format(command=json.dumps(command)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    env.pop("BASE_URL", None)  # the pages use relative links: the site works under any address
    run = subprocess.run([sys.executable, "-m", "jupyter_book", "build", "--html"], cwd=book, env=env,
                         capture_output=True, text=True)
    html_dir = book / "_build" / "html"
    if run.returncode != 0 or not (html_dir / "index.html").exists():
        raise SiteError(f"jupyter book build --html failed (exit {run.returncode}):\n"
                        f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    html_dir.rename(work / "html")
    shutil.rmtree(out, ignore_errors=True)
    work.rename(out)
    return out / "html"


# ---------------------------------------------------------------------------------------- render

def _fetch(cdn: str, path: str) -> bytes:
    with urllib.request.urlopen(cdn.rstrip("/") + path, timeout=60) as response:
        return response.read()


class Page:
    """One page to render: its slug, title, MyST tree (``mdast``) and frontmatter, and where it sits."""

    def __init__(self, slug: str, title: str, data: dict, is_index: bool):
        self.slug, self.title, self.data, self.is_index = slug, title, data, is_index
        self.prefix = "" if is_index else "../"  # from the page's folder to the site's root
        self.path = "index.html" if is_index else f"{slug}/index.html"

    @property
    def export(self) -> dict | None:
        """The lesson's notebook as MyST stored it (``filename``, and ``url`` of its public copy), or None
        for the index page."""
        exports = self.data.get("frontmatter", {}).get("exports", [])
        return next((e for e in exports if e.get("format") == "ipynb"), None)

    @property
    def notebook(self) -> str | None:
        """The lesson's notebook file name, or None for the index page."""
        return self.export["filename"] if self.export else None


class Renderer:
    """Turns a MyST tree into HTML. ``assets`` collects the public files the page uses (figures,
    notebooks). A node type it has no renderer for raises :class:`SiteError`: shown as plain content it
    could lose what it meant (a figure's caption, an admonition's warning) without anyone noticing."""

    def __init__(self, page: Page, slugs: dict[str, str], repo_url: str):
        self.page, self.slugs, self.repo_url = page, slugs, repo_url
        self.assets: set[str] = set()

    def asset(self, path: str) -> str:
        """The page-relative address of a public file ``/name`` (copied to ``build/name``)."""
        name = path.lstrip("/")
        self.assets.add(name)
        return f"{self.page.prefix}build/{html.escape(name)}"

    def href(self, url: str) -> str:
        """A link's address: lessons by notebook path become site pages, other repository files point
        at the repository at the release tag, and external addresses stay as they are."""
        if re.match(r"^[a-z]+:", url) or url.startswith("#"):
            return url
        target, _, anchor = url.partition("#")
        name = Path(target).name
        if (target.endswith(".ipynb") and name in self.slugs) or target in ("README.md", "./README.md"):
            slug = self.slugs.get(name, "")
            page = f"{slug}/index.html" if slug else "index.html"
            return self.page.prefix + page + (f"#{anchor}" if anchor else "")
        path = re.sub(r"^(\./)+", "", target)
        return f"{self.repo_url}/{path}" + (f"#{anchor}" if anchor else "")

    def children(self, node: dict) -> str:
        """The HTML of a node's children, in order."""
        return "".join(self.node(child) for child in node.get("children", []))

    def node(self, node: dict) -> str:
        """The HTML of one MyST node (a dict with ``type`` and, for most, ``children``) and its subtree."""
        kind = node["type"]
        if kind in SIMPLE_TAGS:
            tag = SIMPLE_TAGS[kind]
            return f"<{tag}>{self.children(node)}</{tag}>" if tag else self.children(node)
        if kind in EMPTY_TAGS:
            return f"<{EMPTY_TAGS[kind]}>"
        method = getattr(self, "n_" + kind, None)
        if method is None:
            raise SiteError(f"the page {self.page.slug!r} holds a MyST node of type {kind!r}, which the course's "
                            "renderer does not know: add a renderer for it to course_lib/instructor/site.py (a method "
                            f"n_{kind}, or an entry in SIMPLE_TAGS).")
        return method(node)

    def n_block(self, node):
        kind = node.get("kind", "")
        cls = "cell code-cell" if kind == "notebook-code" else "cell"
        return f'<section class="{cls}">{self.children(node)}</section>'

    def n_text(self, node):
        return html.escape(node["value"])

    def n_heading(self, node):
        depth = min(int(node.get("depth", 2)) + 1, 6)  # the page title is the only h1
        ident = html.escape(node.get("html_id") or node.get("identifier") or "")
        return f'<h{depth} id="{ident}">{self.children(node)}<a class="anchor" href="#{ident}">#</a></h{depth}>'

    def n_inlineCode(self, node):
        return f"<code>{html.escape(node['value'])}</code>"

    def n_code(self, node):
        lang = html.escape(node.get("lang") or "")
        return f'<pre class="source" data-lang="{lang}"><code>{html.escape(node["value"])}</code></pre>'

    def n_list(self, node):
        if node.get("ordered"):
            start = node.get("start") or 1
            return f'<ol start="{int(start)}">{self.children(node)}</ol>'
        return f"<ul>{self.children(node)}</ul>"

    def n_table(self, node):
        return f'<div class="table"><table>{self.children(node)}</table></div>'

    def n_tableCell(self, node):
        tag = "th" if node.get("header") else "td"
        return f"<{tag}>{self.children(node)}</{tag}>"

    def n_link(self, node):
        return f'<a href="{html.escape(self.href(node["url"]))}">{self.children(node)}</a>'

    def n_image(self, node):
        url, alt = node.get("url") or "", html.escape(node.get("alt") or "")
        if url.startswith("/") and url != "/undefined":
            return f'<img src="{self.asset(url)}" alt="{alt}">'
        # A remote picture (Colab's badge) is not fetched: the site must work offline, so its text stands in.
        return f'<span class="badge">{alt or "image"}</span>'

    def n_math(self, node):
        return f'<div class="math">{node.get("html") or html.escape(node["value"])}</div>'

    def n_inlineMath(self, node):
        return f'<span class="math">{node.get("html") or html.escape(node["value"])}</span>'

    def n_html(self, node):
        return node["value"]

    def n_outputs(self, node):
        inner = self.children(node)
        return f'<div class="outputs">{inner}</div>' if inner else ""

    def n_output(self, node):
        return self.output(node.get("jupyter_data") or {})

    def output(self, out: dict) -> str:
        """One notebook output as HTML: a stream's text, an error's traceback, or the richest form of a
        display (a widget shows its static picture when it stored one; a progress bar its finished text)."""
        kind = out.get("output_type")
        if kind == "stream":
            text = html.escape(ANSI.sub("", out.get("text", "")))
            return f'<pre class="output {html.escape(out.get("name", ""))}">{text}</pre>'
        if kind == "error":
            trace = ANSI.sub("", "\n".join(out.get("traceback", [])))
            return f'<pre class="output error">{html.escape(trace)}</pre>'
        data = out.get("data") or {}
        for mime in MIME_ORDER:
            if mime not in data:
                continue
            entry = data[mime]
            if mime.startswith("image/"):
                return (f'<div class="output figure"><img src="{self.asset(entry["path"])}" '
                        'alt="a figure of the lesson"></div>')
            text = entry.get("content", "")
            if mime == "text/html":
                return f'<div class="output html">{text}</div>'
            if WIDGET_VIEW in data:
                if PROGRESS_BAR.search(text):     # a progress bar, stored as it ended (solutions.finish_progress_bars)
                    return f'<pre class="output progress">{html.escape(text)}</pre>'
                return ('<p class="output widget-note">An interactive widget: open this lesson in Colab or '
                        "JupyterLab to use it.</p>")
            return f'<pre class="output">{html.escape(text)}</pre>'
        return ""


LAYOUT = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {site}</title><link rel="stylesheet" href="{prefix}_static/site.css">
<link rel="icon" href="{prefix}_static/favicon.svg" type="image/svg+xml"></head>
<body data-root="{prefix}">
<header><a class="site-title" href="{prefix}index.html">{site}</a>
<input id="search" type="search" placeholder="Search the course" aria-label="Search the course" autocomplete="off">
<ol id="search-results" hidden></ol></header>
<div class="page"><nav class="toc" aria-label="Lessons"><ol>{toc}</ol></nav>
<main><h1>{title}</h1>{actions}{body}<footer class="pager">{pager}</footer></main></div>
<script src="{prefix}_static/site.js"></script></body></html>
"""


def page_html(page: Page, pages: list[Page], body: str, site_title: str, colab: str | None,
              download: str | None) -> str:
    """The whole HTML document of ``page``: layout, table of contents, pager, and for a lesson its Colab
    links (``colab``: the solution notebook's address; the exercises sit beside it in ``student/``) and
    the address of its notebook to download."""
    toc = []
    for other in pages:
        current = ' aria-current="page"' if other is page else ""
        toc.append(f'<li><a href="{page.prefix}{other.path}"{current}>{html.escape(other.title)}</a></li>')
    actions = []
    if colab:
        actions.append(f'<a class="button colab" href="{html.escape(colab)}">Open in Colab</a>')
        exercises = colab.replace("/solutions/", "/student/")
        actions.append(f'<a class="button colab-student" href="{html.escape(exercises)}">The exercises in Colab</a>')
    if download:
        actions.append(f'<a class="button" href="{download}" download="{html.escape(page.notebook or "")}">'
                       "Download the notebook</a>")
    at = pages.index(page)
    pager = []
    if at > 0:
        before = pages[at - 1]
        pager.append(f'<a class="prev" href="{page.prefix}{before.path}">← {html.escape(before.title)}</a>')
    if at + 1 < len(pages):
        after = pages[at + 1]
        pager.append(f'<a class="next" href="{page.prefix}{after.path}">{html.escape(after.title)} →</a>')
    return LAYOUT.format(title=html.escape(page.title), site=html.escape(site_title), prefix=page.prefix,
                         toc="".join(toc), body=body, pager="".join(pager),
                         actions=f'<p class="actions">{"".join(actions)}</p>' if actions else "")


def render(cdn: str, out: Path, root: Path = ROOT) -> None:
    """Render every page served by the MyST content server at ``cdn`` into the folder ``out``. Raises
    :class:`SiteError` for a node type without a renderer."""
    out = Path(out)
    config = json.loads(_fetch(cdn, "/config.json"))
    project = config["projects"][0]
    site_title = project.get("title") or "ConvNet course"
    repo, tag = release.release_info(root)
    entries = [(project["index"], site_title, True)] + [(p["slug"], p["title"], False) for p in project["pages"]]
    pages = [Page(slug, title, json.loads(_fetch(cdn, f"/content/{slug}.json")), is_index)
             for slug, title, is_index in entries]
    slugs = {page.notebook: page.slug for page in pages if page.notebook}
    for page in pages:
        renderer = Renderer(page, slugs, f"https://github.com/{repo}/blob/{tag}")
        body = renderer.node(page.data["mdast"])
        colab = download = None
        if page.notebook:
            colab = f"https://colab.research.google.com/github/{repo}/blob/{tag}/solutions/{page.notebook}"
            download = renderer.asset(page.export["url"])
        target = out / page.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page_html(page, pages, body, site_title, colab, download))
        for name in renderer.assets:
            (out / "build").mkdir(exist_ok=True)
            (out / "build" / name).write_bytes(_fetch(cdn, "/" + name))
    search = json.loads(_fetch(cdn, "/myst.search.json"))
    (out / "myst.search.json").write_text(json.dumps(search))
    shutil.copytree(STATIC, out / "_static", dirs_exist_ok=True)
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve _static as it is


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.instructor site", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the site into build/site/html")
    b.add_argument("--root", type=Path, default=ROOT)
    b.add_argument("--out", type=Path, default=None)
    r = sub.add_parser("render", help="(run by Jupyter Book) render the pages of $CONTENT_CDN into $BUILD_DIRECTORY")
    r.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            print(f"site: {build(args.root, args.out) / 'index.html'}")
        else:
            render(os.environ["CONTENT_CDN"], Path(os.environ["BUILD_DIRECTORY"]), args.root)
    except SiteError as error:
        print(f"site: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

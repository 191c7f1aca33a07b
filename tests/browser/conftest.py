"""JupyterLab in headless Chromium: a server per test module, a page per test, screenshots kept."""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
from lab_helpers import ARTIFACTS  # kept after a failing run, git-ignored


@pytest.hookimpl(tryfirst=True)      # before -m selects: `make test-quick` leaves these out by the mark
def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    mine = [item for item in items if here in Path(str(item.fspath)).parents]
    for item in mine:
        item.add_marker(pytest.mark.browser)
    if not os.path.exists(CHROMIUM):
        skip = pytest.mark.skip(reason="browser tests SKIPPED: Chromium is not installed (apt-get install -y chromium)")
        for item in mine:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a free loopback port with a token, serving a copy of notebooks/."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", root, dirs_exist_ok=True)
    port, token = _free_port(), secrets.token_hex(16)
    # No settings of our own here: the "Jupyter news?" pop-up must be kept away by the override that
    # `make` installs into the environment (jupyter/overrides.json), as for a learner's `make lab`.
    (root / ".jupyter").mkdir(parents=True)
    env = dict(os.environ, COURSE_PROFILE="smoke", JUPYTER_CONFIG_DIR=str(root / ".jupyter"),
               JUPYTER_RUNTIME_DIR=str(root / ".runtime"))
    log = open(root / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.expose_app_in_browser=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError as err:
                if server.poll() is not None or time.time() > deadline:
                    log = (root / "server.log").read_text()[-3000:]
                    raise RuntimeError("JupyterLab did not start:\n" + log) from err
                time.sleep(0.5)
        yield {"base": base, "token": token, "root": root}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "server.log", ARTIFACTS / "server.log")


@pytest.fixture
def page(request):
    """A Chromium page that records console errors and uncaught exceptions."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.errors = []
        pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: pg.errors.append(f"uncaught: {e}"))
        pg.shot = lambda name: pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{name}.png"))
        try:
            yield pg
        finally:
            pg.shot("last")
            browser.close()

"""Driving JupyterLab in the browser: open and run a notebook, check the page is clean."""

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def notebook(*sources: str) -> dict:
    """A Python notebook (as JSON-ready dict) of code cells with these sources, for a test to write and open."""
    return {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}
                      for src in sources],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def open_and_run(page, lab, notebook: str, timeout_s: float = 180) -> None:
    """Open a notebook in JupyterLab, run all cells, wait until the kernel is idle again."""
    page.goto(f"{lab['base']}/lab/tree/{notebook}?token={lab['token']}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=60_000)
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
        " && w.sessionContext.session.kernel.connectionStatus === 'connected'; }", timeout=90_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # idle with no cell still queued ("[*]") means the run finished
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const busy = w.sessionContext.session.kernel.status !== 'idle';"
        " const queued = [...document.querySelectorAll('.jp-InputPrompt')].some(e => e.textContent.includes('*'));"
        " return !busy && !queued; }", timeout=timeout_s * 1000, polling=500)


def assert_clean(page) -> None:
    """No 'Error displaying widget', no JavaScript error, no Python traceback in the page."""
    body = page.inner_text("body")
    assert "Error displaying widget" not in body
    assert "official Jupyter news" not in body, "the news pop-up is back: see jupyter/overrides.json"
    assert "Traceback" not in body and "Error:" not in page.inner_text(".jp-Notebook").split("\n")[0]
    serious = [e for e in page.errors if "favicon" not in e and "net::ERR" not in e]
    assert not serious, f"JavaScript errors in the console: {serious}"

"""The control panel in a real JupyterLab, clicked in headless Chromium.

What headless widget tests cannot show: that the panel renders from the front end's widget
manager, that a DOM click on Pause travels to the kernel while the run goes on in its
background thread, and that the counts on the page stop and start again. This test starts
JupyterLab on loopback with everything in a temporary folder (config, data, runtime,
kernelspec, settings), opens a copy of notebooks/01-quickstart.ipynb, runs all, and drives
the panel like a user. The recipe and its pitfalls: shared/browser-testing.md.

Set SPLITKIT_UPDATE_SCREENSHOTS=1 to write the screenshot to docs/images/panel.png (the
one the docs show); otherwise it goes to the test's temporary folder only, so a test run
leaves the work tree as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "01-quickstart.ipynb"
SCREENSHOT = ROOT / "docs" / "images" / "panel.png"
CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "splitkit-browser-test-token"
KERNEL_NAME = "python3"
KERNEL_DISPLAY = "Python 3 (ipykernel)"  # the status bar shows it: the ready signal below

# A notebook that steers its run from code, one cell at a time: the dispatch cell returns
# at once (the notebook path), so each later cell runs while the run goes on.
STEER_NOTEBOOK = "steer.ipynb"
_STEER_SOURCES = [
    "import time\n"
    "import splitkit\n"
    "from splitkit import dispatch, plan_parts, split_parent, start_parent_job\n"
    "conn = splitkit.connect(records=2_000)\n"
    "parent = start_parent_job(conn.client, conn.sheet_id)\n"
    "split_parent(conn.client, parent.id, plan_parts(2_000, batch_size=10))  # 200 parts\n"
    "handle = dispatch(conn.client, parent.id, lambda part: time.sleep(0.1), concurrency=2)",
    "handle.pause()",
    "handle.set_concurrency(6)",
    "handle.resume()",
    "handle.cancel()\noutcomes = await handle",
    "conn.close()",
]
STEER_CELLS = {
    "cells": [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}
        for src in _STEER_SOURCES
    ],
    "metadata": {
        "kernelspec": {"display_name": KERNEL_DISPLAY, "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 4,
}

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def on_ci() -> bool:
    """Whether CI is set to a truthy value (CI services set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def missing(reason: str) -> NoReturn:
    """Skip for what this machine lacks, but fail under CI: there the test must run."""
    if on_ci():
        pytest.fail(f"the browser test cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Lab:
    url: str
    root: Path
    notebook: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: install Debian's chromium (scripts/ensure-chromium.sh)")
    if not NOTEBOOK.exists():
        pytest.fail(f"{NOTEBOOK} is missing: the browser test opens a copy of it")
    try:
        import psutil
    except ImportError:
        missing("psutil is missing: install the dev extras (pip install -e '.[dev]')")

    run = tmp_path / "lab"
    dirs = {name: run / name for name in ("config", "data", "rt", "ipy", "root", "us", "ws")}
    for path in dirs.values():
        path.mkdir(parents=True)
    # This interpreter (the venv's) as the kernel, whatever the machine has installed: a
    # kernelspec in the private JUPYTER_DATA_DIR wins over system ones.
    _write_json(
        dirs["data"] / "kernels" / KERNEL_NAME / "kernel.json",
        {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": KERNEL_DISPLAY,
            "language": "python",
            "metadata": {"debugger": False},
        },
    )
    # No news or update toasts over the notebook.
    _write_json(
        dirs["us"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    # A copy: Lab writes checkpoints and outputs beside the notebook it opens.
    shutil.copy(NOTEBOOK, dirs["root"] / "quickstart.ipynb")
    _write_json(dirs["root"] / STEER_NOTEBOOK, STEER_CELLS)

    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["rt"]),
        "IPYTHONDIR": str(dirs["ipy"]),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    env.pop("FLATFILE_API_KEY", None)  # the notebook must use the embedded server
    env.pop("FLATFILE_BEARER_TOKEN", None)
    log = (run / "lab.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={dirs['root']}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False",
            "--LanguageServerManager.autodetect=False",  # else jupyter_lsp runs `npm prefix -g`
            f"--LabApp.user_settings_dir={dirs['us']}", f"--LabApp.workspaces_dir={dirs['ws']}",
        ],
        cwd=dirs["root"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited ({server.returncode}):\n{_tail(run / 'lab.log')}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab not ready in 60 s:\n{_tail(run / 'lab.log')}")
                time.sleep(0.2)
        yield Lab(url=url, root=dirs["root"], notebook="quickstart.ipynb")
    finally:
        # SIGTERM, not SIGINT: the server shuts its kernels down on SIGTERM.
        children = psutil.Process(server.pid).children(recursive=True)
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        _, alive = psutil.wait_procs(children, timeout=5)
        for child in alive:
            child.kill()
        log.close()


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def chromium(tmp_path: Path) -> Iterator[Page]:
    """A page in headless Chromium, with its profile and caches in `tmp_path`."""
    browser_home = tmp_path / "chromium"
    browser_home.mkdir()
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(browser_home / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            viewport={"width": 1280, "height": 800},
            device_scale_factor=2,  # a crisp screenshot for the docs
            args=CHROMIUM_ARGS,
            env={
                **os.environ,
                "HOME": str(browser_home),  # else Chromium writes into the real home folder
                "XDG_CONFIG_HOME": str(browser_home / ".config"),
                "XDG_CACHE_HOME": str(browser_home / ".cache"),
            },
        )
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            context.close()


def open_notebook(page: Page, lab: Lab, name: str) -> None:
    """Open `name` in Lab and wait for its kernel to be idle."""
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={TOKEN}")
    # Wait for the kernel itself, not the execution indicator (it reads idle before
    # a kernel exists, and Run All then opens a kernel picker).
    status = page.locator(".jp-StatusBar-TextItem").filter(
        has_text=re.compile(rf"^{re.escape(KERNEL_DISPLAY)} \| Idle$")
    )
    expect(status).to_be_visible(timeout=60_000)


def run_cell(page: Page, index: int) -> None:
    """Select code cell `index` (command mode), run it with Shift+Enter, wait for its end."""
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(index)
    prompt = cell.locator(".jp-InputPrompt")
    prompt.click()
    page.keyboard.press("Shift+Enter")
    expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=60_000)


def test_panel_pauses_and_resumes_the_quickstart_run(lab: Lab, tmp_path: Path) -> None:
    """Run All, then Pause and Resume the quickstart's run from its panel.

    After `dispatch()` the notebook goes on to `outcomes = await handle`, so the kernel's
    main shell is busy for the whole run: the clicks must be handled beside it (a subshell),
    which is what the panel's `_unpin_comm` is for. The quickstart's handler sleeps 0.1 s
    for each of 200 parts, 4 at a time: about 5 s, time enough to click.
    """
    with chromium(tmp_path) as page:
        open_notebook(page, lab, lab.notebook)
        page.locator(".lm-MenuBar-item").filter(has_text=re.compile("^Run$")).click()
        page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()

        panel = page.locator(".splitkit-panel").first  # the quickstart's one run
        expect(panel).to_be_visible(timeout=60_000)
        label = panel.locator(".splitkit-label")
        pause = panel.locator("button.splitkit-pause")

        def completed() -> int:
            return int(panel.locator(".splitkit-count-completed b").inner_text().replace(",", ""))

        _until(lambda: completed() >= 1, "the quickstart's run to complete a part")

        pause.click()
        # The kernel's callback answered although a cell (`await handle`) is running.
        expect(pause).to_have_text(re.compile("Resume"), timeout=10_000)
        expect(label).to_contain_text("paused")
        expect(panel.locator(".splitkit-count-running b")).to_have_text("0")
        frozen = completed()
        parts = re.search(r"/([\d,]+) parts", label.inner_text())
        assert parts, f"no part total in the label {label.inner_text()!r}"
        total = int(parts[1].replace(",", ""))
        assert frozen < total, "the run ended before Pause took: the quickstart is too fast"
        time.sleep(1.0)  # ten handler durations: parts would have completed by now
        assert completed() == frozen, "parts completed while paused"

        pause.click()
        expect(pause).to_have_text(re.compile("Pause"))
        _until(lambda: completed() > frozen, "the counts to move again after Resume")
        expect(label).to_contain_text("running")

        shot = tmp_path / "panel.png"
        panel.screenshot(path=str(shot))
        assert shot.stat().st_size > 1_000
        if os.environ.get("SPLITKIT_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, SCREENSHOT)

        # The run ends, the panel says so exactly, and the notebook runs to its end.
        expect(label).to_contain_text("done", timeout=60_000)
        assert completed() == total
        # Then the live widgets make way for the static final view (their comms closed).
        expect(page.locator(".splitkit-panel-final")).to_have_count(1)
        expect(pause).to_have_count(0)
        expect(page.locator(".splitkit-panel-final .splitkit-label")).to_contain_text("done")
        _wait_cells_done(page)
        # The quickstart shows its plan and summary with show_plan / show_summary.
        expect(page.locator(".splitkit-plan")).to_have_count(1)
        expect(page.locator(".splitkit-summary")).to_contain_text("all parts completed")


def test_the_panel_follows_the_run_steered_from_code(lab: Lab, tmp_path: Path) -> None:
    """Pause, concurrency and Resume from code cells: the toggle and the slider follow
    (set on the kernel's own thread), clicks still work after that, and the run's end
    leaves the static final view."""
    with chromium(tmp_path) as page:
        open_notebook(page, lab, STEER_NOTEBOOK)
        run_cell(page, 0)  # connect, split, dispatch
        panel = page.locator(".splitkit-panel").first
        expect(panel).to_be_visible(timeout=60_000)
        label = panel.locator(".splitkit-label")
        pause = panel.locator("button.splitkit-pause")
        readout = panel.locator(".splitkit-concurrency .widget-readout")
        expect(readout).to_have_text("2")
        expect(pause).to_have_text(re.compile("Pause"))

        run_cell(page, 1)  # handle.pause()
        expect(pause).to_have_text(re.compile("Resume"), timeout=10_000)
        expect(pause).to_have_class(re.compile(r"\bmod-active\b"))
        expect(label).to_contain_text("paused")

        run_cell(page, 2)  # handle.set_concurrency(6)
        expect(readout).to_have_text("6", timeout=10_000)

        run_cell(page, 3)  # handle.resume()
        expect(pause).to_have_text(re.compile("Pause"), timeout=10_000)
        expect(pause).not_to_have_class(re.compile(r"\bmod-active\b"))
        expect(label).to_contain_text("running")

        # The panel still steers after code set its controls.
        pause.click()
        expect(pause).to_have_text(re.compile("Resume"), timeout=10_000)
        expect(label).to_contain_text("paused")

        run_cell(page, 4)  # handle.cancel(); await handle
        final = page.locator(".splitkit-panel-final")
        expect(final).to_have_count(1, timeout=30_000)
        expect(final.locator(".splitkit-label")).to_contain_text("canceled")
        expect(pause).to_have_count(0)
        run_cell(page, 5)  # conn.close()


def _wait_cells_done(page: Page, timeout: float = 60.0) -> None:
    """No cell shows `[*]` (queued or running)."""
    _until(
        lambda: page.locator(".jp-InputPrompt").filter(has_text="[*]").count() == 0,
        "every cell to finish",
        timeout,
    )


def _until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize("ci", ["true", "1", "yes", "True"])
def test_what_is_missing_fails_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="cannot run under CI: chromium is missing"):
        missing("chromium is missing")


@pytest.mark.parametrize("ci", [None, "", "0", "false", "no"])
def test_what_is_missing_skips_with_its_reason_elsewhere(
    monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match=r"^chromium is missing$"):
        missing("chromium is missing")

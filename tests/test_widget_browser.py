"""MemoryView in a real browser: JupyterLab on 127.0.0.1 and headless Chromium.

A notebook that shows ``MemoryView(Memory())`` is run through the JupyterLab
interface; another process then writes, and the page must show the value, as
text even when it is HTML. The screenshot is saved in the test's temporary
directory and copied to ``test-output/widget.png`` for a person to look at.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import run_python
from redis_memory import Memory

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT_COPY = Path(__file__).resolve().parents[1] / "test-output" / "widget.png"
EVIL = "<img src=x onerror=alert(1)>"
# Deadlines only stop a failing test from hanging; nothing asserts on time.
START_SECONDS = 60.0
PAGE_MS = 25_000

NOTEBOOK_SOURCE = """\
from redis_memory import Memory
from redis_memory.widgets import MemoryView

MemoryView(Memory())"""
# The view must follow changes while another cell keeps the kernel busy.
BUSY_SOURCE = """\
import time

time.sleep(120)"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing; scripts/system-packages.sh installs Debian's chromium",
    ),
]


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str
    token: str
    root: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def api(lab: Lab, method: str, path: str) -> object:
    request = urllib.request.Request(
        f"{lab.url}{path}",
        method=method,
        headers={"Authorization": f"token {lab.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def write_notebook(path: Path) -> None:
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3",
                "language": "python",
            }
        },
        "cells": [
            {
                "cell_type": "code",
                "id": "view",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": NOTEBOOK_SOURCE,
            },
            {
                "cell_type": "code",
                "id": "busy",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": BUSY_SOURCE,
            },
        ],
    }
    path.write_text(json.dumps(notebook), encoding="utf-8")


def write_config(config_dir: Path) -> None:
    # No announcements, update checks or package index: the page talks only to 127.0.0.1.
    config = {
        "LabApp": {
            "news_url": None,
            "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "extension_manager": "readonly",
        }
    }
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
    # Without this plugin the page does not ask whether to fetch Jupyter news.
    disabled = {
        "disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}
    }
    (config_dir / "labconfig").mkdir()
    (config_dir / "labconfig" / "page_config.json").write_text(json.dumps(disabled))


@pytest.fixture
def lab(tmp_path: Path, real_mem: Memory, namespace: str) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1, whose kernels use the session's server and namespace.

    ``real_mem`` starts the session's server and clears the namespace afterwards.
    """
    root = tmp_path / "root"
    root.mkdir()
    home = tmp_path / "jupyter"
    write_config(home / "config")
    write_notebook(root / "view.ipynb")

    port = free_port()
    token = secrets.token_hex(16)
    env = {
        **os.environ,
        "REDIS_MEMORY_NAMESPACE": namespace,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
    }

    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if os.geteuid() == 0:  # containers often run tests as root
        command.append("--allow-root")

    log_path = tmp_path / "jupyter.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    server = Lab(url=f"http://127.0.0.1:{port}", token=token, root=root)
    try:
        wait_for_server(server, process, log_path)
        yield server
    finally:
        stop_lab(server, process)


def wait_for_server(lab: Lab, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited early:\n{log_path.read_text()[-4000:]}")
        try:
            api(lab, "GET", "/api/status")
            return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"jupyter lab did not start:\n{log_path.read_text()[-4000:]}"
                )
            time.sleep(0.2)


def stop_lab(lab: Lab, process: subprocess.Popen[bytes]) -> None:
    """Shut down the kernels, then the server; kill the server if it lingers."""
    if process.poll() is None:
        try:
            for kernel in api(lab, "GET", "/api/kernels") or []:  # type: ignore[union-attr]
                api(lab, "DELETE", f"/api/kernels/{kernel['id']}")
            api(lab, "POST", "/api/shutdown")
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname
    return url.startswith(("data:", "blob:", "about:")) or host in (
        "127.0.0.1",
        "localhost",
        "::1",
    )


def run_view(page: Any, namespace: str, screenshot: Path) -> tuple[int, str]:
    """Run the notebook's cells, write from another process and wait for the page."""
    # Run the cells as a user would: click into the first and press Shift+Enter,
    # which runs it and selects the next one.
    editor = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first
    editor.wait_for()
    # The status bar shows Idle only once the kernel is connected; a cell run
    # before that is dropped.
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
    editor.click()
    page.keyboard.press("Shift+Enter")

    output = page.locator(".jp-OutputArea-output")
    output.get_by_text("connected").first.wait_for()
    output.get_by_text(f"namespace '{namespace}' is empty").wait_for()
    page.keyboard.press("Shift+Enter")
    page.get_by_text("Python 3 (ipykernel) | Busy").wait_for()

    run_python(
        f"mem.greeting = 'hello from another process'\n"
        f"mem.evil = {EVIL!r}\n"
        f"mem.cfg = {{'retries': 3, 'hosts': ['a', 'b']}}\n"
        f"mem.tasks = list(range(60))\n"
        f"emit(0)",
        namespace=namespace,
    )
    output.get_by_text("'hello from another process'").wait_for()
    output.get_by_text("items 1 to 50 of 60").wait_for()
    evil_cell = output.get_by_text(f"'{EVIL}'")
    evil_cell.wait_for()
    output.get_by_text("setitem at mem.tasks by another writer").wait_for()

    page.screenshot(path=str(screenshot))
    images = output.locator("img").count()
    evil_text = evil_cell.inner_text()
    # The sleeping cell is still running: the page was updated meanwhile.
    assert page.get_by_text("Python 3 (ipykernel) | Busy").is_visible()
    return images, evil_text


def test_view_in_jupyterlab(lab: Lab, namespace: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    screenshot = tmp_path / "widget.png"
    dialogs: list[str] = []
    blocked: list[str] = []

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 1300})

            def guard(route: object) -> None:
                url = route.request.url  # type: ignore[attr-defined]
                if is_loopback(url):
                    route.continue_()  # type: ignore[attr-defined]
                else:
                    blocked.append(url)
                    route.abort()  # type: ignore[attr-defined]

            context.route("**/*", guard)
            page = context.new_page()
            page.on(
                "dialog",
                lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()),
            )
            page.set_default_timeout(PAGE_MS)
            page.goto(f"{lab.url}/lab/tree/view.ipynb?reset&token={lab.token}")
            try:
                images, evil_text = run_view(page, namespace, screenshot)
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))
                raise
        finally:
            browser.close()

    SCREENSHOT_COPY.parent.mkdir(exist_ok=True)
    shutil.copyfile(screenshot, SCREENSHOT_COPY)
    assert screenshot.stat().st_size > 0
    assert images == 0
    assert evil_text == f"'{EVIL}'"
    assert dialogs == []
    assert blocked == []

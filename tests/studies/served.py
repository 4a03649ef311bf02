"""A dashboard served on a free loopback port for the duration of a ``with`` block, and Chromium."""

from __future__ import annotations

import contextlib
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from studies.web import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@contextlib.contextmanager
def running_dashboard(url: str, **options):
    server = make_server(url, port=0, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        server.app.close()
        thread.join(timeout=5)


def fetch(address: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None):
    """``(status, headers, body)`` of one request; HTTP errors are returned, not raised."""
    request = urllib.request.Request(address, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@contextlib.contextmanager
def chromium_browser():
    """Debian's Chromium driven by Playwright. Missing Chromium is a failure, not a skip: CI installs it."""
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        pytest.fail("Chromium is missing: install Debian's package (apt-get install -y chromium); browser tests need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()

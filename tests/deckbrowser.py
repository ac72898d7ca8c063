"""Test support: serve a built deck on localhost and visit it in Debian's headless chromium.

Every request outside localhost is blocked and recorded, so a test can assert that the deck
attempted none. Used by the end-to-end tests; not part of the product.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """A plain static file server (no SPA fallback) on a free localhost port."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class BrowserLog:
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@contextlib.contextmanager
def browser_page(width: int = 1920, height: int = 1080):
    """(page, log): a chromium page whose outside requests are blocked and logged."""
    from playwright.sync_api import sync_playwright
    log = BrowserLog()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})

            def route(route_):
                host = urlparse(route_.request.url).hostname or ""
                if route_.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
                    route_.continue_()
                else:
                    log.blocked.append(route_.request.url)
                    route_.abort()
            page.route("**/*", route)
            page.on("requestfailed", lambda r: log.failed.append(r.url))
            page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
            yield page, log
        finally:
            browser.close()

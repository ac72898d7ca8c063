"""Test support: serve a built deck on localhost and visit it in Debian's headless chromium.

Every request outside localhost is blocked and recorded, so a test can assert that the deck
attempted none. watch_main_thread(page) records, from inside the page, how long its main thread
was ever blocked (long tasks, and a setTimeout probe's lateness); main_thread_max_block_ms(page)
reads it. Used by the end-to-end tests and bench/bench_deck.py; not part of the product.
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
PROBE_MS = 50
# Runs before any script of every page the tab loads: a PerformanceObserver on 'longtask' entries
# (buffered, so tasks before it was registered count) and a timer that measures how late it fires.
MAIN_THREAD_WATCH = """
window.__mainThread = {longTaskMs: 0, longTasks: 0, probeLateMs: 0};
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) {
    window.__mainThread.longTasks += 1;
    window.__mainThread.longTaskMs = Math.max(window.__mainThread.longTaskMs, entry.duration);
  }
}).observe({type: 'longtask', buffered: true});
(function probe(expected) {
  setTimeout(() => {
    const now = performance.now();
    window.__mainThread.probeLateMs = Math.max(window.__mainThread.probeLateMs, now - expected);
    probe(now + %d);
  }, %d);
})(performance.now() + %d);
""" % (PROBE_MS, PROBE_MS, PROBE_MS)


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


def watch_main_thread(page) -> None:
    """Record main-thread blocking on every page this tab loads from now on."""
    page.add_init_script(MAIN_THREAD_WATCH)


def main_thread_max_block_ms(page) -> dict:
    """{longTaskMs, longTasks, probeLateMs, maxBlockMs} of the page loaded now."""
    state = page.evaluate("() => window.__mainThread || null")
    if state is None:
        raise RuntimeError("watch_main_thread(page) was not called before this page loaded")
    return {**state, "maxBlockMs": max(state["longTaskMs"], state["probeLateMs"])}

"""Browser fixtures: one headless Chromium per session driven through Playwright (sync API),
against the production app served by `live_server` (tests/conftest.py).

The `runtime` fixture (tests/conftest.py) is parametrized over SQLite and PostgreSQL, so every
browser test runs on both. Playwright cannot download browsers here: it drives the system's
Chromium (`PLEDGE_CHROMIUM`, default /usr/bin/chromium). Without it the browser tests are
skipped — unless `PLEDGE_TEST_REQUIRE_BROWSER=1`, when they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Playwright,
    sync_playwright,
)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--no-first-run",
]


def _no_browser(reason: str) -> NoReturn:
    if os.environ.get("PLEDGE_TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(f"PLEDGE_TEST_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = os.environ.get("PLEDGE_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).is_file():
        _no_browser(f"Chromium not found at {executable} (apt-get install chromium)")
    try:
        chromium = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
    except Error as exc:
        _no_browser(f"Chromium at {executable} did not start: {exc.message.splitlines()[0]}")
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh browser context (no cookies, no storage) per test, aimed at the live server.

    It depends on `live_server` so that it closes before the server shuts down. Script errors
    and Content-Security-Policy violations (htmx must run under the app's CSP) fail the test."""
    context = browser.new_context(base_url=live_server)
    context.set_default_timeout(5_000)
    # A first page load starts the server's lazy work (templates, static files): on a loaded
    # 2-core machine it can take longer than an assertion's wait, and means nothing.
    context.set_default_navigation_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text:
            problems.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    try:
        yield page
    finally:
        context.close()
    assert not problems, problems

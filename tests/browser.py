"""Debian's Chromium, driven by Playwright, for the guests' web page (never a downloaded
browser: ``playwright install`` would fetch one from the internet)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
NOISE = ("Failed to load resource",)
"""Console lines Chromium writes for every HTTP error the page handles itself (a wrong
password's 401): not faults of the page."""


def chromium_path() -> Path:
    """Debian's Chromium; in CI its absence fails (scripts/test.sh installs it), elsewhere
    the browser tests skip and say why."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium (the ``browser`` fixture in conftest.py)."""
    path = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(path))
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Watched:
    """A page and everything it did that a test may want to hold against it."""

    page: Page
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def origins(self) -> set[str]:
        return {f"{urlsplit(r.url).scheme}://{urlsplit(r.url).netloc}" for r in self.requests}

    def assert_clean(self, origin: str) -> None:
        """Every request went to ``origin`` (no CDN, no other host) and nothing failed in the
        page: no uncaught error and no Content-Security-Policy violation."""
        assert self.origins() == {origin}, self.origins()
        assert not self.errors, self.errors


async def open_page(browser: Browser, url: str, width: int = 1280,
                    height: int = 800) -> Watched:
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    watched = Watched(page)
    page.on("request", lambda request: watched.requests.append(request))
    page.on("pageerror", lambda error: watched.errors.append(f"page error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith(NOISE):
            watched.errors.append(f"console: {message.text}")

    page.on("console", on_console)
    await page.goto(url)
    return watched

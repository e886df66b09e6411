"""Debian's Chromium under Playwright, for the console's browser tests.

Never `playwright install`: the browser is the system's (`apt-get install chromium`), launched
with a fresh profile and no background traffic. Every request the pages make is checked to
stay on the loopback server: a page that reached for a CDN fails its test.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"


def require_browser() -> None:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (apt-get install chromium): browser tests skipped")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")


class Visit:
    """One browser context: its page, what it tried to reach off the server, its JS errors."""

    def __init__(self, context: Any, page: Any, shots: Path) -> None:
        self.context = context
        self.page = page
        self.off_site: list[str] = []
        self.errors: list[str] = []
        self._shots = shots

    async def screenshot(self, name: str) -> Path:
        path = self._shots / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ARTIFACTS / path.name)
        return path


@asynccontextmanager
async def browsing(profile: Path, shots: Path) -> AsyncIterator[Visit]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            user_data_dir=str(profile),
            executable_path=str(CHROMIUM),
            args=ARGS,
            headless=True,
            viewport={"width": 1366, "height": 800},  # a laptop screen
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            visit = Visit(context, page, shots)

            async def guard(route: Any) -> None:
                host = urlsplit(route.request.url).hostname
                if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
                    await route.continue_()
                else:
                    visit.off_site.append(route.request.url)
                    await route.abort()

            await context.route("**/*", guard)
            page.on("pageerror", lambda error: visit.errors.append(str(error)))
            page.on(
                "console",
                lambda message: (
                    visit.errors.append(message.text)
                    if message.type == "error" and "401" not in message.text
                    else None
                ),
            )
            yield visit
        finally:
            await context.close()

"""The running system (local servers and the five services) and a headless Chromium: Debian's
``chromium`` (``make browser-deps``) driven by Playwright, which never downloads a browser."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from exporter.local.services import LocalServices
from exporter.settings import Settings

SCREENSHOTS = Path(__file__).parent / "screenshots"
README_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def chromium() -> str:
    path = os.environ.get("EXPORTER_CHROMIUM") or shutil.which("chromium")
    if path is None:
        pytest.fail("no chromium on PATH: run `make browser-deps` (Debian's chromium package)")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests marked full_browser (the slow ones) only in ``make test-browser``'s full run."""
    if os.environ.get("EXPORTER_BROWSER_FULL") == "1":
        return
    full = [item for item in items if item.get_closest_marker("full_browser")]
    if full:
        config.hook.pytest_deselected(items=full)
        items[:] = [item for item in items if item not in full]


@pytest.fixture(scope="package")
def services(servers: Settings) -> Iterator[LocalServices]:
    running = LocalServices(servers)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def signed_in(browser: Browser, base_url: str, user: str, tenant: str) -> BrowserContext:
    """A browser profile of its own, signed in through the console's form."""
    context = await browser.new_context(base_url=base_url)
    context.set_default_timeout(20_000)
    page = await context.new_page()
    await page.goto("/console/login")
    await page.get_by_label("User").fill(user)
    await page.get_by_label("Tenant").fill(tenant)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/exports")
    await page.close()
    return context


@pytest.fixture
async def page(browser: Browser, services: LocalServices) -> AsyncIterator[Page]:
    context = await signed_in(browser, services.api_url, "alice", "acme")
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def screenshot(page: Page, name: str, readme: bool = False) -> None:
    """Every page the tests visit is kept for review; two of them illustrate the README."""
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    if readme:
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=README_SHOTS / f"console-{name}.png")

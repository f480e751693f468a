"""The console in headless Chromium against the running system: what a person does in it, and
what another tenant or another site cannot do."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect

from exporter.local.demo import DEVICE, ingested, publish
from exporter.local.demo import demo_measurements as measurements
from exporter.local.services import LocalServices
from exporter.settings import Settings
from exporter.topics import Topic
from tests.browser.conftest import screenshot, signed_in

pytestmark = pytest.mark.servers
TARGET = f"urn:cpt:smartdevice:nid:{DEVICE}:temperature"
ALICE = {"X-User-Id": "alice", "X-Tenant-Id": "acme"}


async def fill_item(page: Page, target: str) -> None:
    await page.get_by_label("Target").first.fill(target)
    await page.get_by_label("Between dates").first.check()
    await page.locator('[name="items.0.params.from"]').fill("2026-01-01T00:00")
    await page.locator('[name="items.0.params.to"]').fill("2026-01-01T02:00")


async def test_a_recurring_export_made_in_the_form_is_listed_with_its_next_runs(page: Page) -> None:
    await page.goto("/console/exports/new")
    await page.get_by_label("Name").fill("Hourly in Rome")
    await page.get_by_role("button", name="Hourly").click()
    await page.get_by_label("Timezone").fill("Europe/Rome")
    await page.get_by_label("Start at").fill("2030-03-30T22:30:00Z")
    await fill_item(page, TARGET)
    runs = page.locator("#next-runs li")
    await expect(runs).to_have_count(5)
    # The scheduler's rules, in the export's zone: startAt, then every elapsed hour, across the
    # night the clocks go forward (02:00 CET is 03:00 CEST).
    await expect(runs.first).to_have_text("2030-03-30 23:30:00 CET")
    await expect(runs.nth(2)).to_have_text("2030-03-31 01:30:00 CET")
    await expect(runs.nth(3)).to_have_text("2030-03-31 03:30:00 CEST")
    await page.locator("#next-runs").scroll_into_view_if_needed()
    await screenshot(page, "form", readme=True)
    await page.get_by_role("button", name="Create export").click()
    await expect(page.get_by_role("heading", name="Hourly in Rome")).to_be_visible()
    await screenshot(page, "export")
    await page.get_by_role("link", name="Edit").click()
    await expect(page.get_by_label("Timezone")).to_have_value("Europe/Rome")
    await page.get_by_label("Name").fill("Hourly in Rome, edited")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", name="Hourly in Rome, edited")).to_be_visible()
    await page.goto("/console/exports?type=recurring")
    row = page.get_by_role("row").filter(has_text="Hourly in Rome, edited")
    await expect(row.locator("time")).to_have_count(5)
    await expect(row.locator("time").first).to_have_text("2030-03-30 22:30:00 UTC")
    await screenshot(page, "exports", readme=True)


async def test_the_apis_validation_message_is_shown_on_its_field(page: Page) -> None:
    await page.goto("/console/exports/new")
    await fill_item(page, TARGET)
    await page.get_by_label("Timezone").fill("Mars/Olympus")
    await page.get_by_label("Medium").first.select_option("email")
    await page.get_by_label("Recipients").first.fill("not-an-address")
    await page.get_by_role("button", name="Create export").click()
    zone = page.locator('[id="format.timezone-error"]')
    await expect(zone).to_have_text("'Mars/Olympus' is not an IANA timezone name such as Europe/Rome")
    await expect(page.get_by_label("Timezone")).to_have_attribute("aria-invalid", "true")
    recipients = page.locator('[id="notification.messages.0.recipients-error"]')
    await expect(recipients).to_contain_text("'not-an-address' is not an email address")
    await screenshot(page, "validation")


@asynccontextmanager
async def renderer_stopped(services: LocalServices) -> AsyncIterator[None]:
    """Nothing takes a job meanwhile, so it stays queued until the renderer is back."""
    await asyncio.to_thread(services._stop, ["renderer"], 10.0)
    try:
        yield
    finally:
        await asyncio.to_thread(services.restart, "renderer")
        await asyncio.to_thread(services.wait_ready, "renderer")


@pytest.mark.full_browser
async def test_a_one_time_export_runs_and_its_file_is_the_apis(
    page: Page, services: LocalServices, servers: Settings
) -> None:
    await publish(servers, Topic.MEASUREMENTS.value, DEVICE, measurements("acme").to_wire())
    await ingested(servers, tenant="acme")
    async with renderer_stopped(services):
        await page.goto("/console/exports/new")
        await page.get_by_label("Name").fill("Once")
        await page.get_by_label("Type", exact=True).select_option("oneTime")
        await fill_item(page, TARGET)
        await page.get_by_role("button", name="Create export").click()
        row = page.locator("tr.job").first
        await expect(row).to_have_attribute("data-status", "notProcessed")
        await expect(row.locator(".rows")).to_have_text("0 rows")
        await page.evaluate("window.stayed = true")
    # The row is polled while the job waits and runs, and moves on in place (no reload).
    await expect(row).to_have_attribute("data-status", "done", timeout=60_000)
    await expect(row.locator(".rows")).to_have_text("90 rows")
    assert await page.evaluate("window.stayed") is True
    await screenshot(page, "jobs")
    async with page.expect_download() as started:
        await row.get_by_role("link", name=re.compile("^Download")).click()
    downloaded = await (await started.value).path()
    job_id = (await row.get_attribute("id") or "").removeprefix("job-")
    async with httpx.AsyncClient(base_url=services.api_url, headers=ALICE, follow_redirects=True) as api:
        answer = await api.get(f"/jobs/{job_id}/download")
    assert answer.status_code == 200
    assert await asyncio.to_thread(Path(downloaded).read_bytes) == answer.content
    await page.goto("/console/jobs?status=done")  # the tenant-wide history
    await expect(page.locator(f"#job-{job_id}")).to_have_attribute("data-status", "done")
    await screenshot(page, "tenant-jobs")


@pytest.mark.full_browser
async def test_a_queued_job_is_cancelled_from_its_row(page: Page, services: LocalServices) -> None:
    async with renderer_stopped(services):
        item = {"params": {"target": {"value": TARGET}}}
        body = {"type": "oneTime", "format": {"extension": "csv"}, "items": [item]}
        async with httpx.AsyncClient(base_url=services.api_url, headers=ALICE) as api:
            created = (await api.post("/exports", json=body)).json()
        await page.goto(f"/console/exports/{created['id']}")
        row = page.locator("tr.job").first
        await expect(row).to_have_attribute("data-status", "notProcessed")
        await row.get_by_role("button", name="Cancel").click()
        await expect(row).to_have_attribute("data-status", "cancelled")
        await expect(row.locator(".status")).to_have_text("Cancelled")


async def test_another_tenant_sees_nothing(browser: Browser, page: Page, services: LocalServices) -> None:
    await page.goto("/console/exports")
    first = page.locator("table.exports tbody a").first
    theirs = await first.get_attribute("href")
    assert theirs
    other = await signed_in(browser, services.api_url, "mallory", "other")
    try:
        spy = await other.new_page()
        await spy.goto("/console/exports")
        await expect(spy.locator("table.exports tbody")).to_have_text(re.compile("No exports here yet"))
        await spy.goto("/console/jobs")
        await expect(spy.locator("table.jobs tbody")).to_have_text("No jobs yet.")
        answer = await spy.goto(theirs)
        assert answer is not None
        assert answer.status == 404
        await screenshot(spy, "other-tenant")
    finally:
        await other.close()


async def test_a_cross_site_post_is_refused(page: Page, services: LocalServices) -> None:
    """A form on another site cannot post with the user's cookies (SameSite=Strict), and one that
    carried them still lacks the CSRF token only the console's pages know."""
    await page.goto("/console/exports")
    cookies = {cookie["name"]: cookie["value"] for cookie in await page.context.cookies()}
    form = {"type": "oneTime", "format.extension": "csv", "items.0.params.target.value": TARGET}
    async with httpx.AsyncClient(base_url=services.api_url, cookies=cookies) as forger:
        without = await forger.post("/console/exports", data=form)
        wrong = await forger.post("/console/exports", data={**form, "csrf": "x" * 43})
    assert (without.status_code, wrong.status_code) == (403, 403)
    kept = await page.context.cookies()
    assert all(cookie["sameSite"] == "Strict" and cookie["httpOnly"] for cookie in kept)


DOCS_TITLES = [("/docs", ".swagger-ui .info .title"), ("/redoc", ".api-info h1")]


@pytest.mark.parametrize(("path", "ready"), DOCS_TITLES)
async def test_the_api_docs_render_with_no_network(
    browser: Browser, services: LocalServices, path: str, ready: str
) -> None:
    context = await browser.new_context(base_url=services.api_url)
    outside: list[str] = []

    async def local_only(route: Route) -> None:
        if route.request.url.startswith(services.api_url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await context.route("**/*", local_only)
    try:
        docs = await context.new_page()
        await docs.goto(path)
        await expect(docs.locator(ready)).to_contain_text("Exporter request-api", timeout=30_000)
        await screenshot(docs, path.strip("/"))
        # ReDoc's credit logo, an image that hides itself when unreachable: nothing the page needs.
        assert set(outside) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
    finally:
        await context.close()


@pytest.mark.full_browser
async def test_the_console_fits_a_phone(browser: Browser, services: LocalServices) -> None:
    context = await signed_in(browser, services.api_url, "alice", "acme")
    try:
        phone = await context.new_page()
        await phone.set_viewport_size({"width": 390, "height": 844})
        await phone.goto("/console/exports")
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        await screenshot(phone, "phone")
    finally:
        await context.close()

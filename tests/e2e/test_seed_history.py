"""Seed 004 (DataExportHistory) across the five services: an export run to completion and shown
in the seed's fields, run again by ``DataExport/Trigger``, and its ``Download`` link a real
presigned URL, expiring after 30 s, that serves the file."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from exporter.adapters.storage import ObjectStore
from exporter.local.demo import DEMO_EXPORT, DEVICE, WINDOW_MINUTES, demo_measurements, ingested, publish
from exporter.local.services import LocalServices
from exporter.settings import Settings
from exporter.topics import Topic
from request_api.seeds import history
from tests.e2e.test_thin_path import eventually
from tests.seed_history_examples import SEED_ALL, SEED_DOWNLOAD, SEED_INSTANCE, SEED_PAGED, assert_seed_shape

pytestmark = pytest.mark.servers
HISTORY = "/DataExport/History"
USER = "history-user"


@pytest.fixture(scope="module")
async def api(services: LocalServices) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=services.api_url, headers={"X-User-Id": USER}, timeout=10
    ) as client:
        yield client


async def completed(api: httpx.AsyncClient, number: int) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        entry: dict[str, Any] = (await api.get(f"{HISTORY}/{number}")).json()["instance"]
        return entry if entry["dataExportHistoryStatusTypeName"] in {"Completed", "Failed"} else None

    return await eventually(ended, what=f"history entry {number} to complete")


async def test_a_completed_run_in_the_seeds_fields_triggered_again_and_downloaded(
    services: LocalServices, api: httpx.AsyncClient, servers: Settings
) -> None:
    await publish(servers, Topic.MEASUREMENTS.value, DEVICE, demo_measurements().to_wire())
    await ingested(servers)
    name = f"history-{uuid.uuid4().hex[:8]}"
    body = {key: value for key, value in DEMO_EXPORT.items() if key != "notification"} | {"name": name}
    created = await api.post("/exports", json=body)
    assert created.status_code == 201, created.text

    listed = (await api.get(f"{HISTORY}/Paged", params={"pageSize": 1000})).json()["pagedResults"]["items"]
    [queued] = [item for item in listed if item["dataExportName"] == name]
    entry = await completed(api, queued["identity"])
    assert entry["dataExportHistoryStatusTypeName"] == "Completed"
    assert entry["exportRowCount"] == WINDOW_MINUTES
    assert (entry["createdByUserName"], entry["storageLocationName"]) == (USER, servers.storage.bucket)
    [job] = (await api.get("/jobs", params={"requestId": created.json()["id"]})).json()["items"]
    assert entry["storageKey"] == job["files"][0]["key"]
    assert_seed_shape((await api.get(f"{HISTORY}/{entry['identity']}")).json(), SEED_INSTANCE)
    assert_seed_shape((await api.get(f"{HISTORY}/")).json(), SEED_ALL)
    assert_seed_shape((await api.get(f"{HISTORY}/Paged")).json(), SEED_PAGED)

    triggered = await api.post("/DataExport/Trigger", json={"dataExportId": entry["dataExportId"]})
    assert triggered.status_code == 200, triggered.text
    number = triggered.json()["dataExportHistoryId"]
    assert number != entry["identity"]
    rerun = await completed(api, number)
    assert (rerun["dataExportId"], rerun["dataExportHistoryStatusTypeName"]) == (
        entry["dataExportId"],
        "Completed",
    )

    download = await api.get(f"{HISTORY}/{number}/Download")
    assert download.status_code == 200, download.text
    assert_seed_shape(download.json(), SEED_DOWNLOAD)
    history.DownloadInstance.model_validate(download.json())
    link = download.json()["instance"]["link"]
    assert parse_qs(urlsplit(link).query)["X-Amz-Expires"] == ["30"]
    async with httpx.AsyncClient(timeout=10) as plain:
        fetched = await plain.get(link)
    assert fetched.status_code == 200
    assert fetched.content == await ObjectStore(servers.storage).read(rerun["storageKey"])
    assert fetched.content.decode().count("\n") == 1 + WINDOW_MINUTES

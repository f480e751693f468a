"""One real export across every service: Kafka in, HTTP, MongoDB, object store, SMTP out.

Measurements go through the ingestor's topic; the export is created over HTTP; the scheduler,
renderer and notifier do the rest. The file is read back from the object store and through the
emailed link, and the email from the SMTP server's maildir. Data and request are ``make run``'s.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from exporter.adapters.storage import ObjectStore
from exporter.local.demo import (
    DEMO_EXPORT,
    DEMO_RECIPIENT,
    DEMO_USER,
    DEVICE,
    WINDOW_MINUTES,
    demo_measurements,
    first_link,
    ingested,
    publish,
    read_mails,
)
from exporter.local.services import LocalServices
from exporter.settings import Settings
from exporter.topics import Topic
from tests.topic_reader import json_field, json_object, topic_reader

pytestmark = pytest.mark.servers
T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, seconds: float = 60.0) -> T:
    """Polls ``probe`` until it returns something, or fails the test naming what never came."""
    try:
        async with asyncio.timeout(seconds):
            while (result := await probe()) is None:
                await asyncio.sleep(0.3)
            return result
    except TimeoutError:
        pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
async def api(services: LocalServices) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-User-Id": DEMO_USER}
    async with httpx.AsyncClient(base_url=services.api_url, headers=headers, timeout=10) as client:
        yield client


async def test_thin_path_and_redelivery(
    services: LocalServices, api: httpx.AsyncClient, servers: Settings
) -> None:
    await publish(servers, Topic.MEASUREMENTS.value, DEVICE, demo_measurements().to_wire())
    await ingested(servers)
    store = ObjectStore(servers.storage)

    created = await api.post("/exports", json=DEMO_EXPORT)
    assert created.status_code == 201, created.text
    request = created.json()
    assert {"id", "createdAt", "updatedAt", "deletedAt"} <= request.keys()
    assert request["deletedAt"] is None

    async def finished_job() -> dict[str, Any] | None:
        jobs: list[dict[str, Any]] = (await api.get(f"/exports/{request['id']}/jobs")).json()["items"]
        job = jobs[0] if jobs else None
        delivered = job and job["notifications"][0]["status"] in {"sent", "skipped", "failed"}
        if job and job["status"] in {"done", "failed"} and delivered:
            return job
        return None

    job = await eventually(finished_job, what="the job to finish and notify")
    assert job["status"] == "done", job["error"]
    assert job["notifications"][0]["status"] == "sent"
    assert job["rowCount"] == WINDOW_MINUTES
    [file] = job["files"]
    assert (await api.get(f"/jobs/{job['id']}")).json()["files"] == [file]

    # The file, read back from the object store: the requested columns, labels and time zone.
    content = await store.read(file["key"])
    assert file["sizeInBytes"] == len(content)
    rows = list(csv.reader(content.decode().splitlines()))
    assert rows[0] == ["Ora", "Dispositivo", "Temperatura", "Unità"]
    assert len(rows) == 1 + WINDOW_MINUTES
    assert rows[1] == ["2026-01-01T01:00:00.000+01:00", DEVICE, "20.0", "Cel"]
    assert rows[-1] == ["2026-01-01T01:59:00.000+01:00", DEVICE, "25.9", "Cel"]

    # The email, from the SMTP server: subject and link filled in, and the link serves the file.
    # Only this job's email counts: earlier tests on the same servers may have sent others.
    def this_jobs_mails() -> list[Any]:
        return [
            message
            for _, message in read_mails(services.maildir)
            if file["key"] in (first_link(message) or "")
        ]

    [message] = await eventually(lambda: _some(this_jobs_mails()), what="the email")
    assert message["To"] == DEMO_RECIPIENT
    assert message["Subject"] == "Export Plant temperatures is ready"
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    assert text.get_content().startswith(f"{WINDOW_MINUTES} rows: http")
    link = first_link(message)
    assert link is not None
    async with httpx.AsyncClient() as plain:
        downloaded = await plain.get(link)
    assert downloaded.status_code == 200
    assert downloaded.content == content

    # Kafka redelivers: the same export.requested again must not make a second file or email.
    keys_before = await store.list_keys(file["key"].rsplit("/", 1)[0])
    etag_before = await store.stat(file["key"])
    completed_seen = await count_completed(servers, job["id"])
    redelivered = await replay_export_requested(servers, job["id"])
    assert redelivered, "the original export.requested was not found on the topic"
    await eventually(
        lambda: _more_than(count_completed(servers, job["id"]), completed_seen),
        what="the renderer to answer the redelivery with the existing result",
    )
    await asyncio.sleep(3)  # room for a wrong second email to arrive, were one sent
    assert await store.list_keys(file["key"].rsplit("/", 1)[0]) == keys_before
    assert await store.stat(file["key"]) == etag_before
    assert len(this_jobs_mails()) == 1
    again = (await api.get(f"/jobs/{job['id']}")).json()
    assert again["status"] == "done"
    assert again["notifications"][0]["attempts"] == 1


async def _some(items: list[T]) -> list[T] | None:
    return items or None


async def _more_than(count: Awaitable[int], floor: int) -> int | None:
    value = await count
    return value if value > floor else None


async def _read_topic(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes]]:
    found: list[tuple[bytes | None, bytes]] = []
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with topic_reader(settings, topic) as consumer:
        # The embedded broker's end offsets are unreliable: read until the topic goes quiet.
        while loop.time() - began < 10:
            batches = await consumer.getmany(timeout_ms=500)
            records = [(r.key, r.value) for rs in batches.values() for r in rs]
            found.extend(records)
            if not records and loop.time() - began > 2:
                break
        return found


async def count_completed(settings: Settings, job_id: str) -> int:
    records = await _read_topic(settings, Topic.EXPORT_COMPLETED.value)
    return sum(1 for _, value in records if json_field(value, "data", "jobId") == job_id)


async def replay_export_requested(settings: Settings, job_id: str) -> bool:
    for key, value in await _read_topic(settings, Topic.EXPORT_REQUESTED.value):
        if json_object(value).get("id") == job_id:
            await publish(settings, Topic.EXPORT_REQUESTED.value, (key or b"").decode(), json.loads(value))
            return True
    return False

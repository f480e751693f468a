"""A job's life in the renderer, on the real servers: cancelled mid-way, redelivered when done, taken
over from a dead renderer, failed after transient errors; and uploads that leave nothing behind."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exporter.adapters.mongo.client import JOBS
from exporter.adapters.mongo.jobs import new_job_document
from exporter.adapters.storage import ObjectStore
from exporter.contracts.job import JobResult
from exporter.domain.job_life import JobStatus
from exporter.domain.jobs import pending_deliveries
from exporter.rendering.names import job_prefix
from exporter.runtime import Runtime
from exporter.topics import Topic
from renderer.export_job import handle_export_requested
from tests.integration.renderer_support import (
    body,
    configure,
    job_spec,
    measurement,
    objects_of,
    render,
    requested,
    series_item,
    store,
)
from tests.topic_reader import json_field, json_object, topic_reader

pytestmark = pytest.mark.servers
START = datetime(2026, 3, 1, tzinfo=UTC)
MIB = 1024 * 1024


async def seed(runtime: Runtime, tenant: str, rows: int) -> None:
    for first in range(0, rows, 20_000):
        batch = range(first, min(first + 20_000, rows))
        await store(
            runtime, [measurement(tenant, "weight", START + timedelta(seconds=i), i / 4, "kg") for i in batch]
        )


async def test_a_cancelled_export_stops_and_leaves_nothing(runtime: Runtime) -> None:
    rows = 30_000
    await seed(runtime, "big", rows)
    configure(runtime, read_batch_size=500, progress_interval_seconds=0.05, split_rows=10_000)
    spec = job_spec("big", body("csv", [series_item("weight", START, START + timedelta(days=2))]))
    rendering = asyncio.create_task(handle_export_requested(runtime, requested(spec)))

    async def progressed() -> int:
        while True:
            job = await runtime.jobs.get(spec.job_id)
            if job and job.progress.rows > 0:
                return job.progress.rows
            await asyncio.sleep(0.05)

    async with asyncio.timeout(60):
        await progressed()
    assert await runtime.jobs.cancel(spec.job_id)
    async with asyncio.timeout(30):  # a bound for a hang, not a measurement
        await rendering

    job = await runtime.jobs.get(spec.job_id)
    assert job is not None
    assert job.status is JobStatus.CANCELLED
    assert 0 < job.progress.rows < rows
    prefix = job_prefix(spec.tenant, spec.request_id, spec.job_id)
    assert await runtime.storage.list_keys(prefix) == []
    assert await runtime.storage.unfinished_uploads(prefix) == []


async def test_an_abandoned_upload_leaves_nothing(runtime: Runtime) -> None:
    """Parts already sent are thrown away with the multipart upload they belong to."""
    key = "uploads/abandoned.bin"

    class Stop(Exception):
        pass

    def write_and_give_up() -> None:
        with runtime.storage.uploading(key, "application/octet-stream", 5 * MIB) as upload:
            for _ in range(12):
                upload.write(b"x" * MIB)
            raise Stop

    with pytest.raises(Stop):
        await asyncio.to_thread(write_and_give_up)
    assert await runtime.storage.list_keys("uploads/") == []
    assert await runtime.storage.unfinished_uploads("uploads/") == []


async def test_a_streamed_upload_arrives_whole(runtime: Runtime) -> None:
    key = "uploads/whole.bin"
    chunks = [bytes([n]) * (MIB + n) for n in range(12)]

    def write() -> None:
        with runtime.storage.uploading(key, "application/octet-stream", 5 * MIB) as upload:
            for chunk in chunks:
                upload.write(chunk)

    await asyncio.to_thread(write)
    assert await runtime.storage.read(key) == b"".join(chunks)


async def completed_events(runtime: Runtime, job_id: str, at_least: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with topic_reader(runtime.settings, Topic.EXPORT_COMPLETED.value) as consumer:
        async with asyncio.timeout(30):
            while len(found) < at_least:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found += [
                        json_object(record.value)
                        for record in records
                        if json_field(record.value, "data", "jobId") == job_id
                    ]
    return found


async def test_a_redelivered_done_job_republishes_and_writes_nothing(runtime: Runtime) -> None:
    await seed(runtime, "again", 100)
    spec = job_spec("again", body("csv", [series_item("weight", START, START + timedelta(hours=1))]))
    first = await render(runtime, spec)
    assert first.result.status is JobStatus.DONE
    [name] = first.objects
    stat = await runtime.storage.stat(first.file(name).key)

    await handle_export_requested(runtime, requested(spec))

    assert await objects_of(runtime, spec) == first.objects
    assert await runtime.storage.stat(first.file(name).key) == stat
    assert await runtime.jobs.get(spec.job_id) == first.job
    [event] = await completed_events(runtime, spec.job_id, at_least=1)  # the relay is not running here
    assert event["data"]["status"] == "done"
    assert [file["key"] for file in event["data"]["files"]] == [first.file(name).key]


async def test_a_job_whose_renderer_died_is_taken_over(runtime: Runtime) -> None:
    await seed(runtime, "orphans", 10)
    window = series_item("weight", START, START + timedelta(hours=1))
    lapsed, live = (job_spec("orphans", body("csv", [window])) for _ in range(2))
    now = datetime.now(UTC)
    for spec, lease_until in ((lapsed, now - timedelta(seconds=1)), (live, now + timedelta(minutes=5))):
        await runtime.jobs.add(new_job_document(spec, pending_deliveries(spec.request)))
        await runtime.db[JOBS].update_one(
            {"_id": spec.job_id},
            {"$set": {"status": JobStatus.IN_PROGRESS.value, "leaseUntil": lease_until, "startedAt": now}},
        )

    taken = await render(runtime, lapsed)
    untouched = await render(runtime, live)

    assert taken.result.status is JobStatus.DONE
    assert taken.result.row_count == 10
    assert untouched.job.status is JobStatus.IN_PROGRESS
    assert untouched.objects == {}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_transient_storage_errors_are_retried_then_fail_the_job(runtime: Runtime) -> None:
    await seed(runtime, "unlucky", 10)
    configure(runtime, max_attempts=2, backoff_initial_seconds=0.05)
    storage = runtime.settings.storage.model_copy(update={"endpoint": f"127.0.0.1:{closed_port()}"})
    runtime.storage = ObjectStore(storage)
    spec = job_spec("unlucky", body("csv", [series_item("weight", START, START + timedelta(hours=1))]))

    await handle_export_requested(runtime, requested(spec))

    job = await runtime.jobs.get(spec.job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert job.error == "the object store was unavailable; gave up after 2 attempts"
    assert job.files == []


async def test_a_run_that_was_taken_over_can_neither_beat_nor_finish(runtime: Runtime) -> None:
    spec = job_spec("taken", body("csv", [series_item("weight", START, START + timedelta(hours=1))]))
    await runtime.jobs.add(new_job_document(spec, pending_deliveries(spec.request)))
    lease = timedelta(minutes=1)
    first = await runtime.jobs.start(spec.job_id, -lease)  # started, and its lease already lapsed
    await asyncio.sleep(0.01)  # run start times are kept to the millisecond
    second = await runtime.jobs.start(spec.job_id, lease)

    assert first is not None
    assert second is not None
    assert second > first
    assert not await runtime.jobs.heartbeat(spec.job_id, 5, lease, first)
    assert not await runtime.jobs.finish(spec.job_id, JobResult(status=JobStatus.DONE), started_at=first)
    assert await runtime.jobs.heartbeat(spec.job_id, 5, lease, second)
    assert await runtime.jobs.finish(spec.job_id, JobResult(status=JobStatus.DONE), started_at=second)

"""Long renders on the real servers: a render longer than the consumer's max poll interval keeps
its group membership, and a close step longer than the lease keeps the lease."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from tests.integration.notifier_support import eventually
from tests.integration.renderer_support import body, configure, job_spec, objects_of, requested, series_item
from tests.topic_reader import all_values, json_field

from exporter.adapters.mongo.client import OUTBOX
from exporter.adapters.storage import ObjectStore, StreamingUpload
from exporter.contracts.job import JobSpec, Window
from exporter.domain.job_life import JobStatus
from exporter.runtime import Runtime
from exporter.topics import Topic
from renderer.app import create_app
from renderer.export_job import handle_export_requested
from renderer.items import ITEM_WRITERS
from renderer.output import JobOutput

pytestmark = pytest.mark.servers
START = datetime(2026, 3, 1, tzinfo=UTC)
# The consumer is put out of its group after this long without a poll; the slow render lasts longer.
MAX_POLL_SECONDS = 2.0
SLOW_RENDER_SECONDS = 3 * MAX_POLL_SECONDS


def one_hour(tenant: str) -> JobSpec:
    return job_spec(tenant, body("csv", [series_item("weight", START, START + timedelta(hours=1))]))


async def done(runtime: Runtime, job_id: str) -> None:
    async def probe() -> bool | None:
        job = await runtime.jobs.get(job_id)
        return True if job and job["status"] == JobStatus.DONE.value else None

    await eventually(probe, f"job {job_id} done", seconds=120)


async def test_a_render_longer_than_the_max_poll_interval_runs_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow, after = one_hour("patient"), one_hour("patient")
    write_series = ITEM_WRITERS["params"]

    async def slow_series(runtime: Runtime, output: JobOutput, index: int, window: Window) -> None:
        if output.spec.job_id == slow.job_id:
            await asyncio.sleep(SLOW_RENDER_SECONDS)
        await write_series(runtime, output, index, window)

    monkeypatch.setitem(ITEM_WRITERS, "params", slow_series)
    renderer = runtime.settings.renderer.model_copy(update={"max_poll_interval_seconds": MAX_POLL_SECONDS})
    settings = runtime.settings.model_copy(update={"renderer": renderer})

    async with create_app(settings):
        # Same key: one partition, so ``after`` is read only once ``slow`` was handled for good.
        for spec in (slow, after):
            event = requested(spec).to_wire()
            await runtime.publisher.publish_raw(Topic.EXPORT_REQUESTED, slow.job_id, event)
        await done(runtime, slow.job_id)
        await done(runtime, after.job_id)

        async def relayed() -> bool | None:
            return True if await runtime.outbox.pending_count() == 0 else None

        await eventually(relayed, "the outbox relayed")

    announced = [
        value
        for value in await all_values(runtime.settings, Topic.EXPORT_COMPLETED.value)
        if json_field(value, "data", "jobId") == slow.job_id
    ]
    # A consumer put out of its group mid-render could not commit: the record came again, and the
    # finished job was announced a second time.
    assert len(announced) == 1


class SlowClose(ObjectStore):
    """The object store, whose first upload takes until ``released`` to complete: the close of a
    large file's writer, which sends its last parts and completes the upload."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime.settings.storage)
        self.closing = threading.Event()
        self.released = threading.Event()
        self.uploads = 0

    @contextmanager
    def uploading(self, key: str, content_type: str, part_size: int) -> Iterator[StreamingUpload]:
        self.uploads += 1
        with super().uploading(key, content_type, part_size) as upload:
            yield upload
            if not self.closing.is_set():
                self.closing.set()
                self.released.wait(timeout=60)


async def test_a_close_longer_than_the_lease_keeps_the_lease(runtime: Runtime) -> None:
    configure(runtime, lease_seconds=1.0, progress_interval_seconds=0.2)
    storage = runtime.storage = SlowClose(runtime)
    spec = one_hour("closing")
    first = asyncio.create_task(handle_export_requested(runtime, requested(spec)))
    assert await asyncio.to_thread(storage.closing.wait, 30)
    await asyncio.sleep(3 * runtime.settings.renderer.lease_seconds)  # a lease not renewed lapses

    await handle_export_requested(runtime, requested(spec))  # a redelivery meanwhile: not its job
    storage.released.set()
    async with asyncio.timeout(60):  # a bound for a hang, not a measurement
        await first

    job = await runtime.jobs.get(spec.job_id)
    assert job is not None
    assert job["status"] == JobStatus.DONE.value
    assert storage.uploads == 1
    [file] = job["files"]
    [content] = (await objects_of(runtime, spec)).values()
    assert file["checksum"] == f"sha256:{hashlib.sha256(content).hexdigest()}"
    assert [entry["_id"] async for entry in runtime.db[OUTBOX].find()] == [f"{spec.job_id}:completed"]

"""Long renders on the real servers: a render longer than the consumer's max poll interval keeps
its group membership, and a close step longer than the lease keeps the lease."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

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
from tests.integration.notifier_support import eventually
from tests.integration.renderer_support import body, configure, job_spec, objects_of, requested, series_item
from tests.topic_reader import all_values, json_field

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
        return True if job and job.status is JobStatus.DONE else None

    await eventually(probe, f"job {job_id} done", seconds=120)


async def render_in_app(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, specs: list[JobSpec], slow: JobSpec, **renderer: Any
) -> dict[str, int]:
    """Runs the renderer's application on ``specs`` (all under ``slow``'s key: one partition, read
    in order), ``slow`` rendering for ``SLOW_RENDER_SECONDS`` before its frames; once all are done
    and announced, how many times each job was announced."""
    write_series = ITEM_WRITERS["params"]

    async def slow_series(runtime: Runtime, output: JobOutput, index: int, window: Window) -> None:
        if output.spec.job_id == slow.job_id:
            await asyncio.sleep(SLOW_RENDER_SECONDS)
        await write_series(runtime, output, index, window)

    async def relayed() -> bool | None:
        return True if await runtime.outbox.pending_count() == 0 else None

    monkeypatch.setitem(ITEM_WRITERS, "params", slow_series)
    renderer = {"max_poll_interval_seconds": MAX_POLL_SECONDS, **renderer}
    settings = runtime.settings.model_copy(
        update={"renderer": runtime.settings.renderer.model_copy(update=renderer)}
    )
    async with create_app(settings):
        for spec in specs:
            event = requested(spec).to_wire()
            await runtime.publisher.publish_raw(Topic.EXPORT_REQUESTED, slow.job_id, event)
        for spec in specs:
            await done(runtime, spec.job_id)
        await eventually(relayed, "the outbox relayed")
    values = await all_values(runtime.settings, Topic.EXPORT_COMPLETED.value)
    announced = Counter(json_field(value, "data", "jobId") for value in values)
    return {spec.job_id: announced[spec.job_id] for spec in specs}


async def test_a_render_longer_than_the_max_poll_interval_runs_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow, after = one_hour("patient"), one_hour("patient")

    announced = await render_in_app(runtime, monkeypatch, [slow, after], slow)

    # A consumer put out of its group mid-render could not commit: the record came again, and the
    # finished job was announced a second time.
    assert announced == {slow.job_id: 1, after.job_id: 1}


async def test_renders_beyond_the_limit_wait_in_kafka(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow, *others = (one_hour("queued") for _ in range(3))

    announced = await render_in_app(runtime, monkeypatch, [slow, *others], slow, concurrent_renders=1)

    assert announced == {spec.job_id: 1 for spec in (slow, *others)}
    jobs = [await runtime.jobs.get(spec.job_id) for spec in (slow, *others)]
    runs = sorted(
        (job.started_at, job.completed_at) for job in jobs if job and job.started_at and job.completed_at
    )
    assert len(runs) == 3
    assert all(end <= later_start for (_, end), (later_start, _) in itertools.pairwise(runs))


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
    assert job.status is JobStatus.DONE
    assert storage.uploads == 1
    [file] = job.files
    [content] = (await objects_of(runtime, spec)).values()
    assert file.checksum == f"sha256:{hashlib.sha256(content).hexdigest()}"
    assert [entry["_id"] async for entry in runtime.db[OUTBOX].find()] == [f"{spec.job_id}:completed"]

"""The renderer's use case: one ``export.requested`` in, files and one ``export.completed`` out.

Frames are read from MongoDB on the event loop, one ahead, while the previous one is shaped and
written in a worker thread; the bytes go to the object store as they are made (multipart parts,
see ``ObjectStore.uploading``). Between frames the job's progress is recorded and its lease renewed
every few seconds; a job that left ``inProgress`` meanwhile was cancelled, and everything it wrote
is removed. Transient storage and database errors restart the job after a backoff, a bounded
number of times; anything else fails it at once, with the reason as its ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TypeVar

import polars as pl
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from exporter.adapters.errors import is_transient
from exporter.adapters.kafka import KafkaPublisher
from exporter.adapters.mongo.client import Document, in_transaction
from exporter.adapters.mongo.jobs import new_job_document
from exporter.contracts.base import utcnow
from exporter.contracts.events import ExportRequested
from exporter.contracts.job import JobFile, JobResult, JobSpec, JobStatus, Window
from exporter.contracts.request import Item
from exporter.dispatch import completed_event
from exporter.domain.jobs import pending_deliveries
from exporter.notifications.sending import backoff_seconds
from exporter.rendering.bundle import JobFiles
from exporter.rendering.decimation import decimated_frames
from exporter.rendering.names import FileNamer, job_prefix, naming_context, object_key
from exporter.rendering.output import FileFormat, RenderedFile, SplitLimits
from exporter.rendering.sinks import BinarySink
from exporter.rendering.table import Layout, series_unit
from exporter.rendering.writers import Document as FileDocument
from exporter.runtime import Runtime
from exporter.settings import RendererSettings
from exporter.topics import Topic

log = logging.getLogger(__name__)
SOURCE = "exporter/renderer"
T = TypeVar("T")


class Cancelled(Exception):
    """The job left ``inProgress`` while rendering: someone cancelled it."""


class Progress:
    """Records a running job's rows and renews its lease, at most every ``progress_interval``."""

    def __init__(self, runtime: Runtime, job_id: str) -> None:
        self._jobs = runtime.jobs
        self._job_id = job_id
        settings = runtime.settings.renderer
        self._interval = settings.progress_interval_seconds
        self.lease = timedelta(seconds=settings.lease_seconds)
        self._last = time.monotonic()
        self.rows = 0  # of the files already finished

    async def beat(self, rows: int = 0, *, now: bool = False) -> None:
        """``rows``: those of the file being written. Raises ``Cancelled`` once the job is not ours."""
        if now or time.monotonic() - self._last >= self._interval:
            self._last = time.monotonic()
            if not await self._jobs.heartbeat(self._job_id, self.rows + rows, self.lease):
                raise Cancelled


async def ahead(items: AsyncIterator[T]) -> AsyncIterator[T]:
    """``items`` with the next one already being read while the caller works on the current one."""
    pending = asyncio.ensure_future(anext(items))
    try:
        while True:
            try:
                item = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(items))
            yield item
    finally:
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending


async def _prepend(
    first: pl.DataFrame | None, rest: AsyncIterator[pl.DataFrame]
) -> AsyncIterator[pl.DataFrame]:
    if first is not None:
        yield first
    async for frame in rest:
        yield frame


class JobOutput:
    """Where a job's files go: named, split and zipped by the request and the settings."""

    def __init__(self, runtime: Runtime, spec: JobSpec, progress: Progress) -> None:
        self.spec = spec
        self._runtime = runtime
        self._settings: RendererSettings = runtime.settings.renderer
        self._progress = progress
        fmt = spec.request.format
        self.format = FileFormat.of(fmt)
        self.namer = FileNamer(self.format.suffix, fmt.hash_filenames)
        self.limits = SplitLimits(self._settings.split_rows, self._settings.split_bytes)
        several = len(spec.request.items) > 1 or self.limits.enabled
        zip_name = FileNamer("zip", fmt.hash_filenames).name(None, {}, spec.request.name or "export")
        self.files = JobFiles(self._open_object, zip_name if several else None, spec.scheduled_at)

    @contextmanager
    def _open_object(self, name: str, content_type: str) -> Iterator[BinarySink]:
        key = object_key(self.spec.tenant, self.spec.request_id, self.spec.job_id, name)
        with self._runtime.storage.uploading(key, content_type, self._settings.upload_part_bytes) as upload:
            yield upload

    async def write(
        self, name: str, frames: AsyncIterator[pl.DataFrame], title: str, window: Window, unit: str | None
    ) -> None:
        """One file (or its parts) of ``frames``; the value's unit is the data's, else ``unit``."""
        first = await anext(frames, None)
        fmt = self.spec.request.format
        layout = Layout.of(fmt, self.format.writer, series_unit(first) if first is not None else unit)
        document = FileDocument(
            layout.labels,
            title=title,
            request_name=self.spec.request.name,
            window_from=window.from_,
            window_to=window.to,
            timezone=fmt.timezone,
        )
        writer = await asyncio.to_thread(
            self.files.writer, name, self.format, document, self.namer, self.limits
        )
        try:

            def put(frame: pl.DataFrame) -> None:
                writer.write(layout.shape(frame))

            async for frame in ahead(_prepend(first, frames)):
                await asyncio.to_thread(put, frame)
                await self._progress.beat(writer.rows)
            parts = await asyncio.to_thread(writer.close)
        except BaseException as error:
            await asyncio.to_thread(writer.discard, error)
            raise
        self.files.add(parts)
        self._progress.rows += sum(part.rows for part in parts)

    async def close(self) -> list[JobFile]:
        rendered = await asyncio.to_thread(self.files.close)
        return [self._job_file(file) for file in rendered]

    def _job_file(self, file: RenderedFile) -> JobFile:
        return JobFile(
            key=object_key(self.spec.tenant, self.spec.request_id, self.spec.job_id, file.name),
            name=file.name,
            size_in_bytes=file.size_in_bytes,
            rows=file.rows,
            checksum=f"sha256:{file.sha256}",
            content_type=file.content_type,
        )


async def _metric_unit(runtime: Runtime, tenant: str, publisher: str, metric: str) -> str | None:
    """A series' unit from its thing's metadata: for the header of a file without rows."""
    thing = await runtime.things.get(tenant, publisher)
    units = {m.name: m.unit for m in thing.metrics} if thing else {}
    return units.get(metric) or None


async def write_measurements(
    runtime: Runtime, output: JobOutput, index: int, item: Item, window: Window
) -> None:
    spec = output.spec
    fmt = spec.request.format
    params = item.params
    target = params.target
    frames = runtime.measurements.frames(
        spec.tenant,
        target.publisher,
        target.metric,
        window.from_,
        window.to,
        runtime.settings.renderer.read_batch_size,
        params.channel_id,
        params.subtopic,
    )
    if params.decimation is not None:
        frames = decimated_frames(frames, params.decimation, fmt.timezone)
    unit = (
        await _metric_unit(runtime, spec.tenant, target.publisher, target.metric)
        if fmt.include_unit
        else None
    )
    name = output.namer.name(
        item.filename or fmt.filename_mask, naming_context(spec, index), f"export-{index + 1}"
    )
    await output.write(name, frames, target.label or target.metric, window, unit)


async def render(runtime: Runtime, spec: JobSpec, progress: Progress) -> list[JobFile]:
    """Every file of the job, in the object store; an error or a cancel abandons what was begun."""
    output = JobOutput(runtime, spec, progress)
    try:
        for index, (item, window) in enumerate(zip(spec.request.items, spec.windows, strict=True)):
            await write_measurements(runtime, output, index, item, window)
        return await output.close()
    except BaseException as error:
        await asyncio.to_thread(output.files.discard, error)
        raise


def failure(error: BaseException, attempts: int) -> str:
    """The job's ``error``: what went wrong, and that retrying did not help when it was tried."""
    reason = f"{type(error).__name__}: {error}"
    return f"gave up after {attempts} attempts: {reason}" if attempts > 1 else reason


async def run(runtime: Runtime, spec: JobSpec) -> JobResult | None:
    """The job rendered, retried after transient errors; None when it was cancelled meanwhile."""
    settings = runtime.settings.renderer
    prefix = job_prefix(spec.tenant, spec.request_id, spec.job_id)
    started = utcnow()
    progress = Progress(runtime, spec.job_id)
    attempt = 1
    while True:
        try:
            files = await render(runtime, spec, progress)
        except Cancelled:
            await runtime.storage.delete_prefix(prefix)
            log.info("job %s cancelled while rendering; its files were removed", spec.job_id)
            return None
        except Exception as error:
            if is_transient(error) and attempt < settings.max_attempts:
                delay = backoff_seconds(
                    attempt, settings.backoff_initial_seconds, settings.backoff_max_seconds
                )
                log.warning("job %s attempt %d: %s; retrying in %.1f s", spec.job_id, attempt, error, delay)
                await asyncio.sleep(delay)
                attempt += 1
                progress.rows = 0
                with contextlib.suppress(Exception):  # a store still down is the next attempt's to meet
                    await progress.beat(now=True)
                continue
            log.exception("job %s failed", spec.job_id)
            with contextlib.suppress(Exception):  # the job fails either way; leave nothing half-made
                await runtime.storage.delete_prefix(prefix)
            return JobResult(
                status=JobStatus.FAILED,
                error=failure(error, attempt),
                started_at=started,
                completed_at=utcnow(),
            )
        return JobResult(
            status=JobStatus.DONE,
            bucket=runtime.storage.bucket,
            files=files,
            row_count=progress.rows,
            size_in_bytes=sum(f.size_in_bytes for f in files),
            started_at=started,
            completed_at=utcnow(),
        )


async def finish(runtime: Runtime, spec: JobSpec, result: JobResult) -> None:
    event = completed_event(spec, result, SOURCE)

    async def write(session: AsyncClientSession) -> Document | None:
        if not await runtime.jobs.finish(spec.job_id, result, session=session):
            return None
        return await runtime.relay.add(Topic.EXPORT_COMPLETED, spec.job_id, event, session)

    if queued := await in_transaction(runtime.mongo, write):
        runtime.relay.publish_soon([queued])


async def republish(runtime: Runtime, spec: JobSpec, job: dict[str, object]) -> None:
    """A redelivered job that already finished: announce its existing result again, write nothing."""
    aliases = [info.alias or name for name, info in JobResult.model_fields.items()]
    result = JobResult.model_validate({alias: job[alias] for alias in aliases if job.get(alias) is not None})
    event = completed_event(spec, result, SOURCE)
    await KafkaPublisher(runtime.broker).publish_raw(Topic.EXPORT_COMPLETED, spec.job_id, event.to_wire())


async def handle_export_requested(runtime: Runtime, event: ExportRequested) -> None:
    spec = event.data
    job = await runtime.jobs.get(spec.job_id)
    if job is None:
        # An ad-hoc job published by an upstream system: record it before running it.
        with contextlib.suppress(DuplicateKeyError):  # a concurrent delivery recorded it first
            await runtime.jobs.add(new_job_document(spec, pending_deliveries(spec.request)))
        job = await runtime.jobs.get(spec.job_id)
        assert job is not None
    if JobStatus(job["status"]).is_final:
        await republish(runtime, spec, job)
        return
    if not await runtime.jobs.start(spec.job_id, timedelta(seconds=runtime.settings.renderer.lease_seconds)):
        log.info("job %s is running elsewhere; skipping", spec.job_id)
        return
    if (result := await run(runtime, spec)) is not None:
        await finish(runtime, spec, result)

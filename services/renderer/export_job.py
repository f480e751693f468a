"""The renderer's use case: one ``export.requested`` in, files and one ``export.completed`` out.

A delivery is taken in two parts: ``take``, quick, in the consumer (the job recorded, refused,
announced again, or started: its lease taken), then ``render_job``, which may last an hour and
runs beside the consumer (see ``renderer.renders``). Frames are read from MongoDB on the event
loop, one ahead, while the previous one is shaped and written in a worker thread; the bytes go
to the object store as they are made (multipart parts, see ``ObjectStore.uploading``). The job's
lease is renewed beside the render for as long as it runs, its progress recorded with it; a job
that left ``inProgress`` meanwhile was cancelled, and everything it wrote is removed. Transient
storage and database errors restart the job after a backoff, a bounded number of times; anything
else fails it at once. Its ``error`` is a safe reason (see ``failure``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from pymongo.errors import DuplicateKeyError, PyMongoError

from exporter.adapters.errors import is_transient
from exporter.adapters.mongo.jobs import new_job_document
from exporter.contracts.base import utcnow
from exporter.contracts.events import ExportRequested
from exporter.contracts.job import Job, JobFile, JobResult, JobSpec
from exporter.domain.job_life import JobStatus
from exporter.domain.jobs import pending_deliveries
from exporter.domain.retry import backoff_seconds
from exporter.log_context import job_context
from exporter.rendering.decimation import DecimationError
from exporter.rendering.names import MaskError, job_prefix
from exporter.rendering.writers import RowLimitExceeded
from exporter.runtime import Runtime
from exporter.service_layer.dispatch import completed_event
from exporter.service_layer.unit_of_work import Transaction, UnitOfWork
from exporter.signing import Refused
from exporter.topics import Topic
from renderer.items import ITEM_WRITERS
from renderer.output import Cancelled, JobOutput, Progress, Superseded

log = logging.getLogger(__name__)
SOURCE = "exporter/renderer"


async def render(runtime: Runtime, spec: JobSpec, progress: Progress) -> list[JobFile]:
    """Every file of the job, in the object store; an error or a cancel abandons what was begun."""
    output = JobOutput(runtime, spec, progress)
    try:
        for index, (item, window) in enumerate(zip(spec.request.items, spec.windows, strict=True)):
            await ITEM_WRITERS[item.kind](runtime, output, index, window)
        files = await output.close()
        progress.beat()  # cancelled while the last file or the zip was closing?
        return files
    except BaseException as error:
        await asyncio.to_thread(output.files.discard, error)
        raise


# Errors about the request's own content: their text names only what the requester wrote.
USER_ERRORS = (MaskError, DecimationError, RowLimitExceeded)


def failure(error: BaseException, attempts: int, job_id: str) -> str:
    """The job's ``error``, shown to its readers and in notifications: a reason they can act on,
    never a library's text (it names hosts and topology; the log keeps it under the job id)."""
    if isinstance(error, USER_ERRORS):
        return str(error)
    if not is_transient(error):
        return f"an internal error occurred (reference {job_id})"
    # The renderer reaches two servers: MongoDB's errors are PyMongo's, the rest the object store's.
    reason = "the data store" if isinstance(error, PyMongoError) else "the object store"
    reason += " was unavailable"
    return f"{reason}; gave up after {attempts} attempts" if attempts > 1 else reason


async def run(runtime: Runtime, spec: JobSpec, progress: Progress) -> JobResult | None:
    """The job rendered, retried after transient errors; None when it was cancelled meanwhile, or
    taken over by another run (which then writes the same keys: nothing is deleted)."""
    settings = runtime.settings.renderer
    prefix = job_prefix(spec.tenant, spec.request_id, spec.job_id)
    started_at = progress.started_at
    attempt = 1
    while True:
        try:
            if attempt > 1:  # cancelled while waiting to try again?
                await progress.renew()
                progress.beat()
            files = await render(runtime, spec, progress)
        except Cancelled:
            await runtime.storage.delete_prefix(prefix)
            log.info("job %s cancelled while rendering; its files were removed", spec.job_id)
            return None
        except Superseded:
            log.warning("job %s was taken over by another run; this one stops", spec.job_id)
            return None
        except Exception as error:
            if is_transient(error) and attempt < settings.max_attempts:
                delay = backoff_seconds(
                    attempt, settings.backoff_initial_seconds, settings.backoff_max_seconds
                )
                log.warning("job %s attempt %d: %s; retrying in %.1f s", spec.job_id, attempt, error, delay)
                await asyncio.sleep(delay)
                attempt += 1
                progress.restart()
                continue
            log.exception("job %s failed", spec.job_id)
            with contextlib.suppress(Exception):  # the job fails either way; leave nothing half-made
                await runtime.storage.delete_prefix(prefix)
            return JobResult(
                status=JobStatus.FAILED,
                error=failure(error, attempt, spec.job_id),
                started_at=started_at,
                completed_at=utcnow(),
            )
        return JobResult(
            status=JobStatus.DONE,
            bucket=runtime.storage.bucket,
            files=files,
            row_count=progress.rows,
            size_in_bytes=sum(f.size_in_bytes for f in files),
            started_at=started_at,
            completed_at=utcnow(),
        )


async def finish(runtime: Runtime, spec: JobSpec, result: JobResult, started_at: datetime) -> None:
    event = completed_event(spec, result, SOURCE)

    async def write(transaction: Transaction) -> None:
        jobs, session = transaction.jobs, transaction.session
        if await jobs.finish(spec.job_id, result, session=session, started_at=started_at):
            transaction.raise_event(Topic.EXPORT_COMPLETED, spec.job_id, event)

    await UnitOfWork.of(runtime).run(write)


async def republish(runtime: Runtime, spec: JobSpec, job: Job) -> None:
    """A redelivered job that already finished: announce its existing result again, write nothing."""
    event = completed_event(spec, job.result, SOURCE)
    await runtime.publisher.publish_raw(Topic.EXPORT_COMPLETED, spec.job_id, event.to_wire())


async def take(runtime: Runtime, event: ExportRequested) -> datetime | None:
    """The quick part of a delivery: the run's ``startedAt`` when the job is now this caller's to
    render (its lease taken), else None (announced again if finished, or running elsewhere)."""
    spec = event.data
    with job_context(spec):
        return await _take(runtime, spec, event.actor or spec.owner)


async def _take(runtime: Runtime, spec: JobSpec, created_by: str) -> datetime | None:
    """``created_by``: the principal the event names, for a job the event itself makes."""
    job = await runtime.jobs.get(spec.job_id)
    if job is None:
        # An ad-hoc job published by an upstream system: record it before running it.
        with contextlib.suppress(DuplicateKeyError):  # a concurrent delivery recorded it first
            await runtime.jobs.add(new_job_document(spec, pending_deliveries(spec.request), created_by))
        job = await runtime.jobs.get(spec.job_id)
        assert job is not None
    if job.tenant != spec.tenant:
        # A producer may act for its tenants only: another tenant's job is neither run nor announced.
        raise Refused(f"tenant not allowed: job {spec.job_id!r} belongs to another tenant")
    if job.status.is_final:
        await republish(runtime, spec, job)
        return None
    lease = timedelta(seconds=runtime.settings.renderer.lease_seconds)
    if (started_at := await runtime.jobs.start(spec.job_id, lease)) is None:
        log.info("job %s is running elsewhere; skipping", spec.job_id)
    return started_at


async def render_job(runtime: Runtime, spec: JobSpec, started_at: datetime) -> None:
    """The slow part: the render, its lease kept beside it until it ends, then its result (which
    clears the lease; a transaction of its own, so no renewal races it)."""
    with job_context(spec):
        progress = Progress(runtime, spec.job_id, started_at)
        async with progress.kept():
            result = await run(runtime, spec, progress)
        if result is not None:
            await finish(runtime, spec, result, started_at)
            if result.status is JobStatus.DONE:  # a failure was logged with its error
                log.info(
                    "job %s done: %d rows, %d bytes", spec.job_id, result.row_count, result.size_in_bytes
                )


async def handle_export_requested(runtime: Runtime, event: ExportRequested) -> None:
    """A delivery taken and rendered in one go, for callers that wait for the render."""
    if (started_at := await take(runtime, event)) is not None:
        await render_job(runtime, event.data, started_at)

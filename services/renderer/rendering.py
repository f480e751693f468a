"""The renderer's use case: one ``export.requested`` in, files and one ``export.completed`` out."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from exporter.adapters.kafka import KafkaPublisher
from exporter.adapters.mongo.client import Document, in_transaction
from exporter.adapters.mongo.jobs import new_job_document
from exporter.contracts.base import utcnow
from exporter.contracts.events import ExportRequested
from exporter.contracts.job import JobFile, JobResult, JobSpec, JobStatus
from exporter.dispatch import completed_event
from exporter.domain.jobs import pending_deliveries
from exporter.rendering.names import FileNamer, job_prefix, naming_context, object_key
from exporter.rendering.output import FileFormat, FileWriter
from exporter.rendering.table import Layout
from exporter.rendering.writers import Document as FileDocument
from exporter.runtime import Runtime
from exporter.topics import Topic

log = logging.getLogger(__name__)
SOURCE = "exporter/renderer"
LEASE = timedelta(seconds=60)
HEARTBEAT_SECONDS = 2.0


class Cancelled(Exception):
    """The job left ``inProgress`` while rendering: someone cancelled it."""


async def render_files(runtime: Runtime, spec: JobSpec, folder: Path) -> list[JobFile]:
    request = spec.request
    file_format = FileFormat.of(request.format)
    layout = Layout.of(request.format, file_format.writer)
    namer = FileNamer(file_format.suffix, request.format.hash_filenames)
    files: list[JobFile] = []
    rows_total, last_beat = 0, time.monotonic()
    for index, (item, window) in enumerate(zip(request.items, spec.windows, strict=True)):
        mask = item.filename or request.format.filename_mask
        name = namer.name(mask, naming_context(spec, index), f"export-{index + 1}")
        document = FileDocument(
            layout.labels,
            title=item.params.target.label or item.params.target.metric,
            request_name=request.name,
            window_from=window.from_,
            window_to=window.to,
            timezone=request.format.timezone,
        )
        path = folder / name
        with path.open("wb") as sink, FileWriter(name, sink, file_format, document) as writer:
            frames = runtime.measurements.frames(
                spec.tenant,
                item.params.target.publisher,
                item.params.target.metric,
                window.from_,
                window.to,
                runtime.settings.renderer.read_batch_size,
                item.params.channel_id,
                item.params.subtopic,
            )
            async for frame in frames:
                writer.write(layout.shape(frame))
                if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                    last_beat = time.monotonic()
                    if not await runtime.jobs.heartbeat(spec.job_id, rows_total + writer.rows, LEASE):
                        raise Cancelled
            rendered = writer.close()
        key = object_key(spec.tenant, spec.request_id, spec.job_id, name)
        stored = await runtime.storage.upload_file(key, path, rendered.content_type)
        files.append(
            JobFile(
                key=key,
                name=name,
                size_in_bytes=stored.size,
                rows=rendered.rows,
                checksum=f"sha256:{rendered.sha256}",
                content_type=rendered.content_type,
            )
        )
        rows_total += rendered.rows
    return files


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
    if not await runtime.jobs.start(spec.job_id, LEASE):
        log.info("job %s is running elsewhere; skipping", spec.job_id)
        return
    started = utcnow()
    bucket = runtime.storage.bucket
    try:
        with tempfile.TemporaryDirectory(prefix="exporter-") as folder:
            files = await render_files(runtime, spec, Path(folder))
    except Cancelled:
        await runtime.storage.delete_prefix(job_prefix(spec.tenant, spec.request_id, spec.job_id))
        log.info("job %s cancelled while rendering; its files were removed", spec.job_id)
        return
    except Exception as error:
        log.exception("job %s failed", spec.job_id)
        result = JobResult(
            status=JobStatus.FAILED,
            error=f"{type(error).__name__}: {error}",
            started_at=started,
            completed_at=utcnow(),
        )
    else:
        result = JobResult(
            status=JobStatus.DONE,
            bucket=bucket,
            files=files,
            row_count=sum(f.rows for f in files),
            size_in_bytes=sum(f.size_in_bytes for f in files),
            started_at=started,
            completed_at=utcnow(),
        )
    await finish(runtime, spec, result)

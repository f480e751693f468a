"""Where a job's files go while it renders: frames read one ahead, shaped and written in a worker
thread, streamed to the object store; progress and the lease kept up beside the render."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TypeVar

import polars as pl

from exporter.contracts.job import JobFile, JobSpec, Window
from exporter.domain.job_life import JobStatus
from exporter.rendering.bundle import JobFiles
from exporter.rendering.names import FileNamer, object_key
from exporter.rendering.output import FileFormat, RenderedFile, SplitLimits
from exporter.rendering.sinks import BinarySink
from exporter.rendering.writers import Document as FileDocument
from exporter.runtime import Runtime
from exporter.settings import RendererSettings

T = TypeVar("T")
log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The job left ``inProgress`` while rendering: someone cancelled it."""


class Superseded(Exception):
    """Another run has the job now (this one's lease lapsed, or it was requeued): its files are
    the other run's to write, under the same keys."""


class Progress:
    """A running job's rows and lease.

    The lease is renewed by ``kept``, a task beside the render, every ``progress_interval``
    for as long as the render runs: a step that takes long without a frame (closing a large
    writer, completing its upload, the zip) never lets it lapse, while a renderer that died or
    froze stops renewing and is taken over. The render asks ``beat`` between frames whether the
    job is still its own; once it is not, the keeper stops renewing for good.
    """

    def __init__(self, runtime: Runtime, job_id: str, started_at: datetime) -> None:
        self._jobs = runtime.jobs
        self._job_id = job_id
        self.started_at = started_at
        settings = runtime.settings.renderer
        self._interval = settings.progress_interval_seconds
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.rows = 0  # of the files already finished
        self.current = 0  # of the file being written
        self._lost: type[Cancelled | Superseded] | None = None

    def beat(self, rows: int = 0) -> None:
        """``rows``: those of the file being written. Raises ``Cancelled`` or ``Superseded`` once
        the keeper found the job no longer this run's."""
        self.current = rows
        if self._lost is not None:
            raise self._lost

    def file_done(self, rows: int) -> None:
        self.rows += rows
        self.current = 0

    def restart(self) -> None:
        """A new attempt begins: nothing of the last one counts."""
        self.rows = self.current = 0

    async def renew(self) -> None:
        """One renewal now; from a lost job on, ``beat`` raises."""
        if self._lost is None and not await self._jobs.heartbeat(
            self._job_id, self.rows + self.current, self.lease, self.started_at
        ):
            job = await self._jobs.get(self._job_id)
            cancelled = job is None or job.status is JobStatus.CANCELLED
            self._lost = Cancelled if cancelled else Superseded

    async def _keep(self) -> None:
        while self._lost is None:
            await asyncio.sleep(self._interval)
            try:
                await self.renew()
            except Exception as error:  # the store hiccuped: the lease outlasts a few intervals
                log.warning("job %s: lease not renewed (%s); trying again", self._job_id, error)

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator[None]:
        """The lease renewed beside the block, until it ends (see the class's notes)."""
        keeper = asyncio.create_task(self._keep(), name=f"lease {self._job_id}")
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper


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


async def peek(
    frames: AsyncIterator[pl.DataFrame],
) -> tuple[pl.DataFrame | None, AsyncIterator[pl.DataFrame]]:
    """The first frame (None when there are none), and all the frames, that one included."""
    first = await anext(frames, None)

    async def again() -> AsyncIterator[pl.DataFrame]:
        if first is not None:
            yield first
        async for frame in frames:
            yield frame

    return first, again()


Shape = Callable[[pl.DataFrame], pl.DataFrame]


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
        items = spec.request.items
        several = len(items) > 1 or self.limits.enabled or any(item.things for item in items) or fmt.archive
        zip_name = FileNamer("zip", fmt.hash_filenames).name(None, {}, spec.request.name or "export")
        self.files = JobFiles(
            self._open_object, zip_name if several else None, spec.scheduled_at, fmt.archive
        )

    @contextmanager
    def _open_object(self, name: str, content_type: str) -> Iterator[BinarySink]:
        key = object_key(self.spec.tenant, self.spec.request_id, self.spec.job_id, name)
        with self._runtime.storage.uploading(key, content_type, self._settings.upload_part_bytes) as upload:
            yield upload

    def document(self, labels: tuple[str, ...], title: str, window: Window) -> FileDocument:
        return FileDocument(
            labels,
            title=title,
            request_name=self.spec.request.name,
            window_from=window.from_,
            window_to=window.to,
            timezone=self.spec.request.format.timezone,
        )

    async def write(
        self,
        name: str,
        frames: AsyncIterator[pl.DataFrame],
        document: FileDocument,
        shape: Shape,
        file_format: FileFormat | None = None,
    ) -> None:
        """One file (or its parts): each frame shaped and written while the next one is read."""
        file_format = file_format or self.format
        writer = await asyncio.to_thread(
            self.files.writer, name, file_format, document, self.namer, self.limits
        )

        def put(frame: pl.DataFrame) -> None:
            writer.write(shape(frame))

        try:
            async for frame in ahead(frames):
                await asyncio.to_thread(put, frame)
                self._progress.beat(writer.rows)
            parts = await asyncio.to_thread(writer.close)
        except BaseException as error:
            await asyncio.to_thread(writer.discard, error)
            raise
        self.files.add(parts)
        self._progress.file_done(sum(part.rows for part in parts))

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

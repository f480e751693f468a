"""The notifier's transfer step: a done run's files pushed to the transfer location its request
names, each once, with retries (see ``exporter.domain.transfers`` for what once means per kind).

On ``export.completed`` (or a sweep: after a crash, a lost event, or for a due retry) the job's
transfer log is planned, once, one entry per file; each due entry is claimed (compare-and-set)
before its push and recorded after. A push cut off mid-way (its lease ran out) is pushed again:
the name is the same, so a repeat leaves what one push leaves, and no file is lost. At most
``transfer.concurrency`` pushes run at once; a push waiting to retry holds no slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

from exporter.adapters.mongo.job_store import UnreadableJob
from exporter.adapters.mongo.transfer_locations import StoredLocation, TransferLocationRepository
from exporter.adapters.mongo.transfers import JobTransfers
from exporter.adapters.transfer.pushers import push
from exporter.adapters.transfer.reach import reach_refusal
from exporter.adapters.transfer.sealing import Sealer
from exporter.contracts.base import utcnow
from exporter.contracts.events import ExportCompleted
from exporter.contracts.job import FileTransfer, Job
from exporter.contracts.transfer import Destination, destination_from
from exporter.domain.job_life import JobStatus
from exporter.domain.retry import backoff_seconds
from exporter.domain.transfers import TransferStatus, named_location
from exporter.notifications.sending import DeliveryFailure
from exporter.runtime import Runtime
from notifier.waiting import Waiting

log = logging.getLogger(__name__)

GONE = "the transfer location was deleted before the run's files could be pushed"
SWEEP_BATCH = 200


class Transfers:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._settings = runtime.settings.transfer
        self._jobs = JobTransfers(runtime.db)
        self._locations = TransferLocationRepository(runtime.db)
        self._sealer = Sealer(self._settings.sealing_key)
        self._slots = asyncio.Semaphore(self._settings.concurrency)
        self._active: dict[str, asyncio.Task[None]] = {}
        self._waiting = Waiting()
        self._closing = False

    async def on_export_completed(self, events: Sequence[ExportCompleted]) -> None:
        done = (event.data.job_id for event in events if event.data.status is JobStatus.DONE)
        job_ids = list(dict.fromkeys(done))
        if job_ids:
            await self.process(await self._runtime.jobs.get_many(job_ids))

    async def sweep(self) -> int:
        grace = timedelta(seconds=self._runtime.settings.notifier.sweep_interval_seconds)
        jobs = await self._jobs.with_open_transfers(utcnow() - grace, SWEEP_BATCH)
        await self.process(jobs)
        return len(jobs)

    async def run(self) -> None:
        """Sweeps until cancelled, then lets the pushes in flight finish (``drain``)."""
        interval = self._runtime.settings.notifier.sweep_interval_seconds
        try:
            while True:
                try:
                    await self.sweep()
                except Exception:
                    log.exception("transfer sweep failed; trying again in %.0f s", interval)
                await asyncio.sleep(interval)
        except asyncio.CancelledError:
            await self.drain()
            raise

    async def drain(self) -> None:
        """Starts nothing more; pushes waiting to retry stop (their entry says when to go on, and
        a sweep elsewhere does), and those pushing get the step timeout to finish and be recorded,
        so fewer are left to their lease."""
        self._closing = True
        self._waiting.cancel_all()
        tasks = list(self._active.values())
        if tasks:
            await asyncio.wait(tasks, timeout=self._settings.timeout_seconds)
        for task in tasks:
            task.cancel()

    async def process(self, jobs: Sequence[Job | UnreadableJob]) -> None:
        """Plans each done job's transfer log (once), and starts its due pushes in tasks."""
        for job in jobs:
            if isinstance(job, UnreadableJob) or job.status is not JobStatus.DONE:
                continue
            location_id = named_location(job)
            if location_id is None:
                continue
            if not job.transfers:
                job = await self._planned(job, location_id)
            for entry in job.transfers:
                await self._maybe_start(job, entry)

    async def _planned(self, job: Job, location_id: str) -> Job:
        location = await self._locations.get(job.tenant, location_id)
        entries = [
            FileTransfer(
                index=index,
                name=file.name,
                key=file.key,
                status=TransferStatus.PENDING if location else TransferStatus.FAILED,
                attempts=0,
                size_in_bytes=file.size_in_bytes,
                last_error=None if location else GONE,
                updated_at=utcnow(),
            )
            for index, file in enumerate(job.files)
        ]
        await self._jobs.plan(job.id, location_id, location.name if location else None, entries)
        planned = await self._runtime.jobs.get(job.id)
        return planned if planned is not None else job

    async def _maybe_start(self, job: Job, entry: FileTransfer) -> None:
        key = f"{job.id}.transfer.{entry.index}"
        now = utcnow()
        due = entry.status is TransferStatus.PENDING or (
            entry.status is TransferStatus.RETRYING and (entry.next_attempt_at or now) <= now
        )
        cut_off = entry.status is TransferStatus.PUSHING and (entry.lease_until or now) < now
        if self._closing or key in self._active or not (due or cut_off):
            return
        lease = timedelta(seconds=self._settings.lease_seconds)
        if not await self._jobs.claim(job.id, entry.index, entry.status, entry.attempts, lease):
            return  # another notifier holds it, or it moved on
        if cut_off:
            log.warning("transfer %s was cut off mid-push: pushing it again", key)
        task = asyncio.create_task(self._push(job, entry.index, entry.attempts + 1), name=f"push {key}")
        self._active[key] = task
        task.add_done_callback(lambda _: self._active.pop(key, None))

    async def _push(self, job: Job, index: int, attempt: int) -> None:
        """Pushes (claimed), records; after a transient failure waits, claims again, goes on."""
        lease = timedelta(seconds=self._settings.lease_seconds)
        try:
            while True:
                delay = await self._attempt(job, index, attempt)
                if delay is None:
                    return
                await self._waiting.sleep(delay)
                if not await self._jobs.claim(job.id, index, TransferStatus.RETRYING, attempt, lease):
                    return  # a sweep elsewhere took it over
                attempt += 1
        except Exception:
            # Left ``pushing``: once its lease runs out, a sweep pushes it again.
            log.exception("transfer %s.%d stopped", job.id, index)

    async def _attempt(self, job: Job, index: int, attempt: int) -> float | None:
        """One push, recorded; the delay before the next attempt, if any."""
        file = job.files[index]
        error: str | None = None
        try:
            destination = await self._destination(job)
            async with self._slots:
                await push(destination, self._runtime.storage, file, self._settings.timeout_seconds)
        except DeliveryFailure as failure:
            error = failure.reason
            if failure.transient and attempt < self._settings.max_attempts:
                delay = backoff_seconds(
                    attempt, self._settings.backoff_initial_seconds, self._settings.backoff_max_seconds
                )
                when = utcnow() + timedelta(seconds=delay)
                await self._jobs.record(job.id, index, attempt, TransferStatus.RETRYING, error, when)
                return delay
            if failure.transient:
                error = f"{error} (gave up after {attempt} attempts)"
        status = TransferStatus.FAILED if error else TransferStatus.DONE
        await self._jobs.record(job.id, index, attempt, status, error)
        log.info("transfer of %s (job %s): %s after attempt %d", file.name, job.id, status.value, attempt)
        return None

    async def _destination(self, job: Job) -> Destination:
        """The location as it is now (it may have been edited), opened; refused for good when it
        was deleted or now points somewhere it may not."""
        location_id = named_location(job)
        location = None if location_id is None else await self._locations.get(job.tenant, location_id)
        if location is None:
            raise DeliveryFailure(GONE, transient=False)
        destination = self._open(location)
        allow = self._settings.allow_private_addresses
        if (refusal := await reach_refusal(destination, allow)) is not None:
            reason = f"the transfer location may not be reached: {refusal.reason}"
            raise DeliveryFailure(reason, transient=not refusal.lasting)
        return destination

    def _open(self, location: StoredLocation) -> Destination:
        secrets = self._sealer.open(location.sealed, location.tenant, location.id)
        return destination_from(location.destination, secrets)

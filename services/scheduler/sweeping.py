"""The scheduler's housekeeping: no job stays stuck, no file outlives its retention.

A renderer that dies mid-job stops heartbeating; its job would otherwise stay ``inProgress``
for ever (Superset's "still working, refusing to re-compute"). Each sweep gives such a job, or
one running past the working timeout, another attempt (``requeue``: back to ``notProcessed``
and announced again) or fails it with a clear error and the usual ``export.completed``, so its
owner hears about it. After ``max_job_attempts`` it always fails. Every change is guarded by
the run it saw: a renderer that finished meanwhile wins.

A job whose ``export.requested`` was lost (its outbox entry gone, a broker that dropped it) would
stay ``notProcessed`` for ever, counting against its owner's quota and keeping its target busy.
One that no renderer started within ``lost_job_seconds`` of its last announcement, the event
published (not still waiting in the outbox), is announced again: a renderer's claim makes a
duplicate harmless, and a finished job only says so again. After ``max_job_announcements`` it
fails, with the usual ``export.completed``. Renderers take one job at a time, so a job may wait
that long behind others; both settings must allow for it.

Jobs older than the retention become ``expired``: their files are deleted first, so a pass
that dies half-way simply deletes (nothing) again next time; a download then answers 410. Expiry
runs on its own loop (see ``scheduler.app``): a slow or dead object store holds up nothing else.

One damaged job never stops a sweep: a stuck job that cannot be recovered (its stored spec no
longer validates) is failed with a safe reason, one whose files cannot be deleted is passed
over until the next sweep; the detail goes to the log under the job's id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from exporter.adapters.mongo.job_queue import LostJob, RunningJob
from exporter.adapters.mongo.job_store import UnreadableJob
from exporter.contracts.base import utcnow
from exporter.contracts.events import ExportCompleted, ExportRequested
from exporter.contracts.job import JobResult, JobSpec
from exporter.domain.job_life import JobStatus
from exporter.log_context import log_context
from exporter.rendering.names import job_prefix
from exporter.runtime import Runtime
from exporter.service_layer.dispatch import completed_event
from exporter.service_layer.unit_of_work import Transaction, UnitOfWork
from exporter.settings import SchedulerSettings
from exporter.topics import Topic

log = logging.getLogger(__name__)
SOURCE = "exporter/scheduler"
BATCH = 200


async def recover_stuck_jobs(runtime: Runtime, now: datetime) -> int:
    settings = runtime.settings.scheduler
    stuck = await runtime.jobs.stuck(now, timedelta(seconds=settings.working_timeout_seconds), BATCH)
    return await _each(runtime, stuck, _recover, now)


J = TypeVar("J", RunningJob, LostJob)


async def _each(
    runtime: Runtime, jobs: list[J], handle: Callable[[Runtime, J, datetime], Awaitable[bool]], now: datetime
) -> int:
    """``handle`` for each job (its id in the log context), how many it moved; one that cannot be
    handled (its stored record is damaged) is failed, and the others go on."""
    handled = 0
    for job in jobs:
        with log_context(job_id=job.job_id):
            try:
                handled += await handle(runtime, job, now)
            except Exception:
                log.exception("job %s: could not be recovered; failed", job.job_id)
                await _give_up(runtime, job, now)
    return handled


DAMAGED = "Job could not be recovered: its stored record is damaged"


async def _give_up(runtime: Runtime, job: RunningJob | LostJob, now: datetime) -> None:
    """Fails a job that cannot be recovered. No ``export.completed``: what it would say is what
    could not be read; its history says why."""

    async def fail(transaction: Transaction) -> bool:
        jobs, session = transaction.jobs, transaction.session
        if isinstance(job, RunningJob):
            result = JobResult(
                status=JobStatus.FAILED, error=DAMAGED, started_at=job.started_at, completed_at=now
            )
            return await jobs.fail_stuck(job, result, session)
        return await jobs.fail_lost(
            job, JobResult(status=JobStatus.FAILED, error=DAMAGED, completed_at=now), session
        )

    try:
        await UnitOfWork.of(runtime).run(fail)
    except Exception:
        log.exception("job %s: could not be failed either; left for the next sweep", job.job_id)


async def _recover(runtime: Runtime, job: RunningJob, now: datetime) -> bool:
    settings = runtime.settings.scheduler
    spec = JobSpec.model_validate(job.spec)
    if job.started_at is None:
        raise ValueError("a running job without startedAt")  # damaged: the caller gives up on it
    attempt = job.attempts + 1
    timed_out = job.started_at < now - timedelta(seconds=settings.working_timeout_seconds)
    reason = (
        f"ran longer than the working timeout of {settings.working_timeout_seconds:.0f} s"
        if timed_out
        else "its renderer stopped responding"
    )
    retry = settings.stuck_jobs == "requeue" and attempt < settings.max_job_attempts

    if retry:
        again = announcement(spec, f"attempt-{attempt + 1}")
        moved = await _moved(runtime, spec, lambda t: t.jobs.requeue(job, t.session), again)
    else:
        error = f"Job {reason} (attempt {attempt} of {settings.max_job_attempts})"
        result = JobResult(status=JobStatus.FAILED, error=error, started_at=job.started_at, completed_at=now)
        failed = completed_event(spec, result, SOURCE)
        moved = await _moved(runtime, spec, lambda t: t.jobs.fail_stuck(job, result, t.session), failed)
    if not moved:
        return False
    log.warning("job %s %s: %s", spec.job_id, "re-queued" if retry else "failed", reason)
    return True


async def resend_lost_jobs(runtime: Runtime, now: datetime) -> int:
    """Announces again, or fails, the queued jobs no renderer started; how many it handled."""
    settings = runtime.settings.scheduler
    lost = await runtime.jobs.unstarted(now - timedelta(seconds=settings.lost_job_seconds), BATCH)
    if not lost:
        return 0
    # An announcement still waiting for the relay (Kafka down) is late, not lost.
    unsent = await runtime.outbox.pending_keys(Topic.EXPORT_REQUESTED, [job.job_id for job in lost])
    return await _each(runtime, [job for job in lost if job.job_id not in unsent], _resend, now)


def never_started(settings: SchedulerSettings, announcements: int) -> str:
    """Why a lost job failed, in words its owner can act on."""
    waited = settings.lost_job_seconds * announcements / 60
    return (
        f"Job was never started: no renderer took it within {waited:.0f} minutes of queuing "
        f"({announcements} announcements); run the export again, and tell the operator if it recurs"
    )


async def _resend(runtime: Runtime, job: LostJob, now: datetime) -> bool:
    settings = runtime.settings.scheduler
    spec = JobSpec.model_validate(job.spec)
    announcements = job.announcements + 1  # the first one, when it was queued, included
    retry = announcements < settings.max_job_announcements

    if retry:
        again = announcement(spec, f"announcement-{announcements + 1}")
        moved = await _moved(runtime, spec, lambda t: t.jobs.announce(job, t.session), again)
    else:
        result = JobResult(
            status=JobStatus.FAILED, error=never_started(settings, announcements), completed_at=now
        )
        failed = completed_event(spec, result, SOURCE)
        moved = await _moved(runtime, spec, lambda t: t.jobs.fail_lost(job, result, t.session), failed)
    if not moved:
        return False
    log.warning("job %s never started: %s", spec.job_id, "announced again" if retry else "failed")
    return True


Move = Callable[[Transaction], Awaitable[bool]]


def announcement(spec: JobSpec, attempt: str) -> ExportRequested:
    """A job's ``export.requested`` once more, under an id of its own (``<job>:<attempt>``)."""
    event_id = f"{spec.job_id}:{attempt}"
    return ExportRequested(
        id=event_id, source=SOURCE, subject=spec.job_id, tenant=spec.tenant, actor=spec.owner, data=spec
    )


async def _moved(
    runtime: Runtime, spec: JobSpec, move: Move, event: ExportRequested | ExportCompleted
) -> bool:
    """``move`` (a guarded transition) and, when it applied, its ``event``, in one transaction."""
    topic = Topic.EXPORT_REQUESTED if isinstance(event, ExportRequested) else Topic.EXPORT_COMPLETED

    async def write(transaction: Transaction) -> bool:
        if not await move(transaction):
            return False
        transaction.raise_event(topic, spec.job_id, event)
        return True

    return await UnitOfWork.of(runtime).run(write)


async def expire_old_jobs(runtime: Runtime, now: datetime | None = None) -> int:
    now = now or utcnow()
    retention = runtime.settings.scheduler.retention
    expired = 0
    for job in await runtime.jobs.expirable(now - retention, BATCH):
        if isinstance(job, UnreadableJob):
            log.error("job %s: could not be expired, %s", job.job_id, job.problem)
            continue
        try:
            await runtime.storage.delete_prefix(job_prefix(job.tenant, job.request_id, job.id))
            expired += await runtime.jobs.expire(job.id)
        except Exception:
            log.exception("job %s: could not be expired; tried again next sweep", job.id)
    if expired:
        log.info("expired %d jobs older than %s", expired, retention)
    return expired


async def sweep(runtime: Runtime, now: datetime | None = None) -> tuple[int, int]:
    """One pass over the jobs that no renderer is running as it should: (stuck jobs recovered,
    lost jobs announced again or failed)."""
    now = now or utcnow()
    return await recover_stuck_jobs(runtime, now), await resend_lost_jobs(runtime, now)

"""The scheduler's housekeeping: no job stays stuck, no file outlives its retention.

A renderer that dies mid-job stops heartbeating; its job would otherwise stay ``inProgress``
for ever (Superset's "still working, refusing to re-compute"). Each sweep gives such a job, or
one running past the working timeout, another attempt (``requeue``: back to ``notProcessed``
and announced again) or fails it with a clear error and the usual ``export.completed``, so its
owner hears about it. After ``max_job_attempts`` it always fails. Every change is guarded by
the run it saw: a renderer that finished meanwhile wins.

Jobs older than the retention become ``expired``: their files are deleted first, so a sweep
that dies half-way simply deletes (nothing) again next time; a download then answers 410.

One damaged job never stops a sweep: a stuck job that cannot be recovered (its stored spec no
longer validates) is failed with a safe reason, one whose files cannot be deleted is passed
over until the next sweep; the detail goes to the log under the job's id.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from exporter.adapters.mongo.job_queue import RunningJob
from exporter.adapters.mongo.job_store import UnreadableJob
from exporter.contracts.base import utcnow
from exporter.contracts.events import ExportRequested
from exporter.contracts.job import JobResult, JobSpec
from exporter.domain.job_life import JobStatus
from exporter.log_context import log_context
from exporter.rendering.names import job_prefix
from exporter.runtime import Runtime
from exporter.service_layer.dispatch import completed_event
from exporter.service_layer.unit_of_work import Transaction, UnitOfWork
from exporter.topics import Topic

log = logging.getLogger(__name__)
SOURCE = "exporter/scheduler"
BATCH = 200


async def recover_stuck_jobs(runtime: Runtime, now: datetime) -> int:
    settings = runtime.settings.scheduler
    stuck = await runtime.jobs.stuck(now, timedelta(seconds=settings.working_timeout_seconds), BATCH)
    recovered = 0
    for job in stuck:
        with log_context(job_id=job.job_id):
            try:
                recovered += await _recover(runtime, job, now)
            except Exception:
                log.exception("job %s: could not be recovered; failed", job.job_id)
                await _give_up(runtime, job, now)
    return recovered


DAMAGED = "Job could not be recovered: its stored record is damaged"


async def _give_up(runtime: Runtime, job: RunningJob, now: datetime) -> None:
    """Fails a stuck job that cannot be recovered. No ``export.completed``: what it would say
    is what could not be read; its history says why."""
    result = JobResult(status=JobStatus.FAILED, error=DAMAGED, started_at=job.started_at, completed_at=now)
    try:
        await UnitOfWork.of(runtime).run(lambda t: t.jobs.fail_stuck(job, result, t.session))
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

    async def write(transaction: Transaction) -> bool:
        jobs, session = transaction.jobs, transaction.session
        if retry:
            if not await jobs.requeue(job, session):
                return False
            event = ExportRequested(
                id=f"{spec.job_id}:attempt-{attempt + 1}",
                source=SOURCE,
                subject=spec.job_id,
                tenant=spec.tenant,
                actor=spec.owner,
                data=spec,
            )
            transaction.raise_event(Topic.EXPORT_REQUESTED, spec.job_id, event)
            return True
        result = JobResult(
            status=JobStatus.FAILED,
            error=f"Job {reason} (attempt {attempt} of {settings.max_job_attempts})",
            started_at=job.started_at,
            completed_at=now,
        )
        if not await jobs.fail_stuck(job, result, session):
            return False
        transaction.raise_event(Topic.EXPORT_COMPLETED, spec.job_id, completed_event(spec, result, SOURCE))
        return True

    if not await UnitOfWork.of(runtime).run(write):
        return False
    log.warning("job %s %s: %s", spec.job_id, "re-queued" if retry else "failed", reason)
    return True


async def expire_old_jobs(runtime: Runtime, now: datetime) -> int:
    retention = timedelta(days=runtime.settings.scheduler.retention_days)
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
    """One housekeeping pass: (jobs recovered, jobs expired)."""
    now = now or utcnow()
    return await recover_stuck_jobs(runtime, now), await expire_old_jobs(runtime, now)

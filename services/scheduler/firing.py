"""The scheduler's use case: fire what is due, each scheduled time exactly once.

A pass leases a batch of due requests (so two replicas never work on the same one), works out
each one's runs (``domain.schedule.due_runs``), then in ONE transaction moves every schedule on
(guarded by the due time it read), inserts every job and queues every ``export.requested``. The
job id derives from (request, scheduled time), so even a run fired twice could only ever be one
job. If the batch meets a conflict (a schedule moved meanwhile, a job already there) it is
retried request by request, and what another replica already did is simply skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError

from exporter.adapters.mongo.client import Document, in_transaction
from exporter.adapters.mongo.requests import Advance, RequestRecord
from exporter.contracts.base import utcnow
from exporter.dispatch import queued_job
from exporter.domain.schedule import anchor_of, due_runs
from exporter.runtime import Runtime

log = logging.getLogger(__name__)
SOURCE = "exporter/scheduler"


@dataclass(frozen=True, slots=True)
class Firing:
    """One due request's share of a pass: its schedule's move and the jobs it fires."""

    advance: Advance
    jobs: list[Document]
    events: list[Document]


class _Conflict(Exception):
    """Part of the batch was fired or moved by someone else meanwhile."""


def plan(runtime: Runtime, record: RequestRecord, now: datetime) -> Firing:
    request = record.request
    due_at = record.next_run_at
    assert due_at is not None  # claimed because it was due
    due = due_runs(request, due_at, now, runtime.settings.scheduler.max_catch_up_runs)
    if due.skipped:
        log.warning(
            "request %s: %d missed runs skipped (catchUp=%s)", request.id, due.skipped, request.catch_up
        )
    jobs, events = [], []
    # Each run's window starts where the previous fired run's ended: no gaps after skips.
    previous_end = record.last_run_at or anchor_of(request)
    for scheduled_at in due.runs:
        job, event = queued_job(runtime.relay, request, scheduled_at, SOURCE, previous_end)
        jobs.append(job)
        events.append(event)
        previous_end = scheduled_at
    return Firing(
        Advance(request.id, due_at, due.next_run_at, due.runs[-1] if due.runs else due_at), jobs, events
    )


async def _commit(runtime: Runtime, firings: list[Firing]) -> None:
    async def write(session: AsyncClientSession) -> None:
        moved = await runtime.requests.advance_many([f.advance for f in firings], session)
        if moved != len(firings):
            raise _Conflict(f"{len(firings) - moved} of {len(firings)} schedules moved meanwhile")
        if jobs := [job for firing in firings for job in firing.jobs]:
            await runtime.jobs.add_many(jobs, session)
            await runtime.relay.outbox.add_many([e for firing in firings for e in firing.events], session)

    await in_transaction(runtime.mongo, write)


async def fire(runtime: Runtime, firings: list[Firing]) -> list[Document]:
    """Commits ``firings`` as one transaction, or one by one after a conflict; returns the events
    committed."""
    try:
        await _commit(runtime, firings)
        return [event for firing in firings for event in firing.events]
    except (_Conflict, BulkWriteError, DuplicateKeyError) as conflict:
        if len(firings) == 1:
            log.info("request %s was fired elsewhere: %s", firings[0].advance.request_id, conflict)
            return []
        log.info("batch of %d conflicted (%s); firing one by one", len(firings), conflict)
    events: list[Document] = []
    for firing in firings:
        events += await fire(runtime, [firing])
    return events


async def fire_due(runtime: Runtime, now: datetime | None = None) -> int:
    """One pass over everything due now; returns how many jobs it created."""
    settings = runtime.settings.scheduler
    now = now or utcnow()
    claimed = await runtime.requests.claim_due(
        now, settings.batch_size, timedelta(seconds=settings.lease_seconds)
    )
    if not claimed:
        return 0
    events = await fire(runtime, [plan(runtime, record, now) for record in claimed])
    if events:
        runtime.relay.publish_soon(events)
        log.info("fired %d runs of %d due requests", len(events), len(claimed))
    return len(events)

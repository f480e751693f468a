"""Firing due runs: each scheduled time of a request becomes exactly one job and one event."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pymongo.asynchronous.client_session import AsyncClientSession

from exporter.adapters.mongo.client import Document, in_transaction
from exporter.contracts.base import utcnow
from exporter.contracts.request import ExportRequest
from exporter.dispatch import enqueue_job
from exporter.domain.schedule import next_run_after
from exporter.runtime import Runtime

log = logging.getLogger(__name__)
SOURCE = "exporter/scheduler"


async def fire(runtime: Runtime, request: ExportRequest, due_at: datetime, now: datetime) -> Document | None:
    """Advances the schedule, records the job and queues its event, all or nothing; returns the
    event, or None when another scheduler fired this run first."""
    # Missed periods after downtime are skipped: the next run is the first one after now.
    next_run = next_run_after(request, max(due_at, now))

    async def write(session: AsyncClientSession) -> Document | None:
        if not await runtime.requests.advance(request.id, due_at, next_run, session=session):
            return None
        return await enqueue_job(runtime.jobs, runtime.relay, request, due_at, SOURCE, session)

    return await in_transaction(runtime.mongo, write)


async def fire_due(runtime: Runtime) -> int:
    """One pass over everything due now; returns how many jobs it created."""
    settings = runtime.settings.scheduler
    now = utcnow()
    claimed = await runtime.requests.claim_due(
        now, settings.batch_size, timedelta(seconds=settings.lease_seconds)
    )
    events = [event for request, due_at in claimed if (event := await fire(runtime, request, due_at, now))]
    if events:
        runtime.relay.publish_soon(events)
        log.info("fired %d due runs", len(events))
    return len(events)

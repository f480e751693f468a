"""Queuing a job: the job document and its ``export.requested`` event, in the caller's transaction.

The scheduler does it for each due run, the request-api for "run now"; both go through here so
a job always has the same shape and always announces itself.
"""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.client_session import AsyncClientSession

from exporter.adapters.mongo.jobs import JobRepository, new_job_document
from exporter.adapters.mongo.outbox import OutboxRepository
from exporter.contracts.events import ExportRequested
from exporter.contracts.job import JobSpec
from exporter.contracts.request import ExportRequest
from exporter.domain.jobs import job_for, pending_deliveries
from exporter.topics import Topic


async def enqueue_job(
    jobs: JobRepository,
    outbox: OutboxRepository,
    request: ExportRequest,
    scheduled_at: datetime,
    source: str,
    session: AsyncClientSession,
) -> JobSpec:
    spec = job_for(request, scheduled_at)
    event = ExportRequested(
        id=spec.job_id, source=source, subject=spec.job_id, tenant=spec.tenant, actor=spec.owner, data=spec
    )
    await jobs.add(new_job_document(spec, pending_deliveries(spec.request)), session=session)
    await outbox.add(Topic.EXPORT_REQUESTED, spec.job_id, event, session=session)
    return spec

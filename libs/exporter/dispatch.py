"""Queuing a job: the job document and its ``export.requested`` event, in the caller's transaction.

The scheduler does it for each due run, the request-api for "run now"; both go through here so
a job always has the same shape and always announces itself.
"""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.client_session import AsyncClientSession

from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.jobs import JobRepository, new_job_document
from exporter.contracts.events import ExportRequested
from exporter.contracts.request import ExportRequest
from exporter.domain.jobs import job_for, pending_deliveries
from exporter.outbox import OutboxRelay
from exporter.topics import Topic


async def enqueue_job(
    jobs: JobRepository,
    relay: OutboxRelay,
    request: ExportRequest,
    scheduled_at: datetime,
    source: str,
    session: AsyncClientSession,
) -> Document:
    """Returns the queued event, for ``relay.publish_soon`` once the caller has committed."""
    spec = job_for(request, scheduled_at)
    event = ExportRequested(
        id=spec.job_id, source=source, subject=spec.job_id, tenant=spec.tenant, actor=spec.owner, data=spec
    )
    await jobs.add(new_job_document(spec, pending_deliveries(spec.request)), session=session)
    return await relay.add(Topic.EXPORT_REQUESTED, spec.job_id, event, session)

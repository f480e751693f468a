"""Queuing a job and announcing its end: the documents and events every service writes alike.

The scheduler queues each due run, the request-api each "run now"; the renderer announces what
it made, the scheduler what it gave up on. All go through here so a job always has the same
shape and always announces itself the same way.
"""

from __future__ import annotations

from datetime import datetime

from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.jobs import new_job_document
from exporter.adapters.mongo.outbox import outbox_message
from exporter.contracts.events import ExportCompleted, ExportCompletedData, ExportRequested
from exporter.contracts.job import JobResult, JobSpec
from exporter.contracts.request import ExportRequest
from exporter.domain.jobs import job_for, pending_deliveries
from exporter.service_layer.unit_of_work import Queueing
from exporter.topics import Topic


def queued_job(
    request: ExportRequest,
    scheduled_at: datetime,
    source: str,
    previous_end: datetime | None = None,
    created_by: str | None = None,
) -> tuple[Document, Document]:
    """The job document and its ``export.requested`` outbox message, to insert together;
    ``created_by`` (default: the owner) is the user who caused the run, the event's actor."""
    spec = job_for(request, scheduled_at, previous_end)
    actor = created_by or spec.owner
    event = ExportRequested(
        id=spec.job_id, source=source, subject=spec.job_id, tenant=spec.tenant, actor=actor, data=spec
    )
    job = new_job_document(spec, pending_deliveries(spec.request), actor)
    return job, outbox_message(Topic.EXPORT_REQUESTED, spec.job_id, event)


async def enqueue_job(
    transaction: Queueing,
    request: ExportRequest,
    scheduled_at: datetime,
    source: str,
    previous_end: datetime | None = None,
    created_by: str | None = None,
) -> None:
    """Queues one job in ``transaction``; its event goes out once that has committed."""
    job, message = queued_job(request, scheduled_at, source, previous_end, created_by)
    await transaction.jobs.add(job, session=transaction.session)
    transaction.raise_messages([message])


def completed_event(spec: JobSpec, result: JobResult, source: str) -> ExportCompleted:
    """One per job: its id is fixed, so a repeated announcement is recognisable downstream."""
    return ExportCompleted(
        id=f"{spec.job_id}:completed",
        source=source,
        subject=spec.job_id,
        tenant=spec.tenant,
        actor=spec.owner,
        data=ExportCompletedData.from_result(spec.job_id, spec.request_id, result),
    )

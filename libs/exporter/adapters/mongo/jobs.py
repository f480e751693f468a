"""The jobs collection: every run of an export request and its history.

The repository is assembled from what each service asks of it: the queue's transitions and
counts (``job_queue``: request-api, scheduler, renderer), the deliveries (``deliveries``:
notifier), and here the documents and the reads (the request-api's views). Which transitions
exist, and who makes each, is stated in ``exporter.domain.job_life``. Every read returns typed
jobs (``contracts.job.Job``); a read of many gives a damaged one as ``UnreadableJob``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING

from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.deliveries import JobDeliveries
from exporter.adapters.mongo.job_queue import JobQueue
from exporter.adapters.mongo.job_store import UnreadableJob, read_job, to_job
from exporter.contracts.base import utcnow
from exporter.contracts.job import Job, JobSpec
from exporter.domain.job_life import JobStatus


def new_job_document(
    spec: JobSpec, notifications: list[dict[str, Any]], created_by: str | None = None
) -> Document:
    """``created_by``: the user who caused the run (who ran it now, or the principal an upstream
    ``export.requested`` names); a scheduled run's is the request's owner."""
    now = utcnow()
    return {
        "_id": spec.job_id,
        "requestId": spec.request_id,
        "requestVersion": spec.request_version,
        "tenant": spec.tenant,
        "owner": spec.owner,
        "createdBy": created_by or spec.owner,
        "scheduledAt": spec.scheduled_at,
        "status": JobStatus.NOT_PROCESSED.value,
        "spec": spec.to_document(),
        "createdAt": now,
        "updatedAt": now,
        "startedAt": None,
        "completedAt": None,
        "progress": {"rows": 0},
        "bucket": None,
        "files": [],
        "rowCount": 0,
        "sizeInBytes": 0,
        "error": None,
        "notifications": notifications,
        "targets": spec.request.targets,
        "leaseUntil": None,
        "attempts": 0,
    }


def skipped_job_document(job: Document, reason: str, now: datetime) -> Document:
    """``job`` (a ``new_job_document``) recorded as a run that was not queued, and why: it stays
    in the history, final, with nothing to render or deliver."""
    return job | {
        "status": JobStatus.SKIPPED.value,
        "error": reason,
        "completedAt": now,
        "updatedAt": now,
        "notifications": [],
    }


@dataclass(frozen=True, slots=True)
class JobFilter:
    """A tenant's jobs (``GET /jobs``, seed 004's history): those of ``owners``' requests plus of
    the requests ``request_ids`` (None: every owner's), narrowed by the optional filters."""

    tenant: str
    owners: frozenset[str] | None = None
    request_ids: frozenset[str] = frozenset()
    status: JobStatus | None = None
    request_id: str | None = None
    created_by: str | None = None
    scheduled_from: datetime | None = None
    scheduled_to: datetime | None = None

    def query(self) -> Document:
        query: Document = {"tenant": self.tenant}
        if self.owners is not None:
            query["$or"] = [
                {"owner": {"$in": sorted(self.owners)}},
                {"requestId": {"$in": sorted(self.request_ids)}},
            ]
        if self.status is not None:
            query["status"] = self.status.value
        if self.request_id is not None:
            query["requestId"] = self.request_id
        if self.created_by is not None:
            query["createdBy"] = self.created_by
        scheduled: Document = {}
        if self.scheduled_from is not None:
            scheduled["$gte"] = self.scheduled_from
        if self.scheduled_to is not None:
            scheduled["$lt"] = self.scheduled_to
        if scheduled:
            query["scheduledAt"] = scheduled
        return query


class JobRepository(JobQueue, JobDeliveries):
    async def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        """Raises ``ValidationError`` when the stored job no longer validates."""
        query: Document = {"_id": job_id}
        if tenant is not None:
            query["tenant"] = tenant
        document = await self._collection.find_one(query)
        return None if document is None else to_job(document)

    async def get_many(self, job_ids: list[str]) -> list[Job | UnreadableJob]:
        """The jobs among ``job_ids`` that exist, in one query."""
        cursor = self._collection.find({"_id": {"$in": job_ids}})
        return [read_job(document, Job) async for document in cursor]

    async def page_for_request(
        self, tenant: str, request_id: str, skip: int, limit: int
    ) -> list[Job | UnreadableJob]:
        return await self.page(JobFilter(tenant, request_id=request_id), skip, limit)

    async def page(self, where: JobFilter, skip: int, limit: int) -> list[Job | UnreadableJob]:
        """Latest scheduled first."""
        cursor = (
            self._collection.find(where.query())
            .sort([("scheduledAt", DESCENDING), ("_id", ASCENDING)])
            .skip(skip)
            .limit(limit)
        )
        return [read_job(document, Job) async for document in cursor]

    async def count(self, where: JobFilter) -> int:
        return await self._collection.count_documents(where.query())

    async def latest_for_requests(
        self, tenant: str, request_ids: list[str]
    ) -> dict[str, Job | UnreadableJob]:
        """The latest-scheduled job of each of ``request_ids`` that has one, by request id, in one
        query: meant for one-time requests, which have one job each unless run again."""
        cursor = self._collection.find({"tenant": tenant, "requestId": {"$in": request_ids}}).sort(
            [("scheduledAt", DESCENDING), ("_id", ASCENDING)]
        )
        latest: dict[str, Job | UnreadableJob] = {}
        async for document in cursor:
            if document["requestId"] not in latest:
                latest[document["requestId"]] = read_job(document, Job)
        return latest

    async def count_for_request(self, tenant: str, request_id: str) -> int:
        return await self.count(JobFilter(tenant, request_id=request_id))

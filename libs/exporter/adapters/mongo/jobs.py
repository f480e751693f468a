"""The jobs collection: every run of an export request and its history.

Each transition is a guarded ``update_one`` whose filter states the allowed source status,
so concurrent or redelivered work can never move a job twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import JOBS, Document
from exporter.contracts.base import utcnow
from exporter.contracts.job import ACTIVE_STATUSES, JobResult, JobSpec, JobStatus


def new_job_document(spec: JobSpec, notifications: list[dict[str, Any]]) -> Document:
    now = utcnow()
    return {
        "_id": spec.job_id,
        "requestId": spec.request_id,
        "requestVersion": spec.request_version,
        "tenant": spec.tenant,
        "owner": spec.owner,
        "createdBy": spec.owner,
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
        "targets": sorted({item.params.target.value for item in spec.request.items}),
        "leaseUntil": None,
        "attempts": 0,
    }


class JobRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[JOBS]

    async def add(self, document: Document, session: AsyncClientSession | None = None) -> None:
        """Raises DuplicateKeyError when the job exists: its id derives from request and time."""
        await self._collection.insert_one(document, session=session)

    async def add_many(self, documents: list[Document], session: AsyncClientSession) -> None:
        """All or nothing inside ``session``'s transaction; a duplicate raises BulkWriteError."""
        await self._collection.insert_many(documents, session=session)

    async def get(self, job_id: str, tenant: str | None = None) -> Document | None:
        query: Document = {"_id": job_id}
        if tenant is not None:
            query["tenant"] = tenant
        return await self._collection.find_one(query)

    async def start(self, job_id: str, lease: timedelta) -> bool:
        """notProcessed → inProgress, or take over one whose renderer's lease ran out."""
        now = utcnow()
        result = await self._collection.update_one(
            {
                "_id": job_id,
                "$or": [
                    {"status": JobStatus.NOT_PROCESSED.value},
                    {"status": JobStatus.IN_PROGRESS.value, "leaseUntil": {"$lt": now}},
                ],
            },
            {
                "$set": {
                    "status": JobStatus.IN_PROGRESS.value,
                    "startedAt": now,
                    "updatedAt": now,
                    "leaseUntil": now + lease,
                }
            },
        )
        return result.modified_count == 1

    async def heartbeat(self, job_id: str, rows: int, lease: timedelta) -> bool:
        """Progress and lease renewal; False once the job left inProgress (e.g. cancelled)."""
        now = utcnow()
        result = await self._collection.update_one(
            {"_id": job_id, "status": JobStatus.IN_PROGRESS.value},
            {"$set": {"progress.rows": rows, "updatedAt": now, "leaseUntil": now + lease}},
        )
        return result.modified_count == 1

    async def finish(self, job_id: str, result: JobResult, session: AsyncClientSession | None = None) -> bool:
        """inProgress → done/failed/cancelled with what the run produced."""
        update = result.to_document()
        update.update({"updatedAt": utcnow(), "leaseUntil": None, "progress.rows": result.row_count})
        outcome = await self._collection.update_one(
            {"_id": job_id, "status": JobStatus.IN_PROGRESS.value}, {"$set": update}, session=session
        )
        return outcome.modified_count == 1

    async def claim_delivery(self, job_id: str, index: int, key: str) -> bool:
        """Records the intent to send before sending: pending → sending, once per message."""
        result = await self._collection.update_one(
            {"_id": job_id, f"notifications.{index}.status": "pending"},
            {
                "$set": {
                    f"notifications.{index}.status": "sending",
                    f"notifications.{index}.key": key,
                    f"notifications.{index}.updatedAt": utcnow(),
                },
                "$inc": {f"notifications.{index}.attempts": 1},
            },
        )
        return result.modified_count == 1

    async def record_delivery(self, job_id: str, index: int, status: str, error: str | None = None) -> None:
        await self._collection.update_one(
            {"_id": job_id},
            {
                "$set": {
                    f"notifications.{index}.status": status,
                    f"notifications.{index}.lastError": error,
                    f"notifications.{index}.updatedAt": utcnow(),
                }
            },
        )

    async def cancel(self, job_id: str, session: AsyncClientSession | None = None) -> bool:
        """notProcessed/inProgress → cancelled; a renderer notices at its next heartbeat."""
        now = utcnow()
        result = await self._collection.update_one(
            {"_id": job_id, "status": {"$in": [s.value for s in ACTIVE_STATUSES]}},
            {
                "$set": {
                    "status": JobStatus.CANCELLED.value,
                    "completedAt": now,
                    "updatedAt": now,
                    "leaseUntil": None,
                }
            },
            session=session,
        )
        return result.modified_count == 1

    async def cancel_queued(self, request_id: str, session: AsyncClientSession | None = None) -> int:
        """Cancels the jobs of a deleted request that no renderer has started yet."""
        now = utcnow()
        result = await self._collection.update_many(
            {"requestId": request_id, "status": JobStatus.NOT_PROCESSED.value},
            {"$set": {"status": JobStatus.CANCELLED.value, "completedAt": now, "updatedAt": now}},
            session=session,
        )
        return result.modified_count

    async def count_active(self, tenant: str, owner: str) -> int:
        """Queued plus running jobs of one user: what the quota limits."""
        return await self._collection.count_documents(
            {"tenant": tenant, "owner": owner, "status": {"$in": [s.value for s in ACTIVE_STATUSES]}}
        )

    async def active_for_targets(self, tenant: str, targets: list[str]) -> Document | None:
        """A queued or running job of the tenant on any of ``targets``, if there is one."""
        return await self._collection.find_one(
            {
                "tenant": tenant,
                "targets": {"$in": targets},
                "status": {"$in": [s.value for s in ACTIVE_STATUSES]},
            },
            {"_id": 1, "status": 1},
        )

    async def page_for_request(self, tenant: str, request_id: str, skip: int, limit: int) -> list[Document]:
        cursor = (
            self._collection.find({"tenant": tenant, "requestId": request_id})
            .sort([("scheduledAt", DESCENDING), ("_id", ASCENDING)])
            .skip(skip)
            .limit(limit)
        )
        return [document async for document in cursor]

    async def count_for_request(self, tenant: str, request_id: str) -> int:
        return await self._collection.count_documents({"tenant": tenant, "requestId": request_id})

    async def stuck(self, now: datetime, working_timeout: timedelta, limit: int) -> list[Document]:
        """Running jobs whose renderer stopped heartbeating, or that ran past the working timeout."""
        cursor = self._collection.find(
            {
                "status": JobStatus.IN_PROGRESS.value,
                "$or": [{"leaseUntil": {"$lt": now}}, {"startedAt": {"$lt": now - working_timeout}}],
            }
        ).limit(limit)
        return [document async for document in cursor]

    async def requeue(self, job: Document, session: AsyncClientSession) -> bool:
        """inProgress → notProcessed for another attempt; guarded by the run it saw."""
        result = await self._collection.update_one(
            {"_id": job["_id"], "status": JobStatus.IN_PROGRESS.value, "startedAt": job["startedAt"]},
            {
                "$set": {
                    "status": JobStatus.NOT_PROCESSED.value,
                    "startedAt": None,
                    "leaseUntil": None,
                    "progress.rows": 0,
                    "updatedAt": utcnow(),
                },
                "$inc": {"attempts": 1},
            },
            session=session,
        )
        return result.modified_count == 1

    async def fail_stuck(self, job: Document, result: JobResult, session: AsyncClientSession) -> bool:
        """inProgress → failed; guarded by the run it saw, so a renderer that finished wins."""
        update = result.to_document()
        update.update({"updatedAt": utcnow(), "leaseUntil": None})
        outcome = await self._collection.update_one(
            {"_id": job["_id"], "status": JobStatus.IN_PROGRESS.value, "startedAt": job["startedAt"]},
            {"$set": update},
            session=session,
        )
        return outcome.modified_count == 1

    async def expirable(self, created_before: datetime, limit: int) -> list[Document]:
        cursor = self._collection.find(
            {"createdAt": {"$lt": created_before}, "status": {"$ne": JobStatus.EXPIRED.value}},
            {"_id": 1, "tenant": 1, "requestId": 1, "status": 1},
        ).limit(limit)
        return [document async for document in cursor]

    async def expire(self, job_id: str) -> bool:
        now = utcnow()
        result = await self._collection.update_one(
            {"_id": job_id, "status": {"$ne": JobStatus.EXPIRED.value}},
            {
                "$set": {
                    "status": JobStatus.EXPIRED.value,
                    "expiredAt": now,
                    "updatedAt": now,
                    "leaseUntil": None,
                }
            },
        )
        return result.modified_count == 1

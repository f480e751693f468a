"""A job's file transfers: ``transfers[i]``, one per file (see ``exporter.domain.transfers``).

What the notifier's transfer step asks of the jobs collection, with the deliveries' discipline
(``deliveries.py``): the plan is written once (only where none is), and every move of an entry
is a compare-and-set on its status and attempt count, so two notifiers, or one and its own
redelivered event, never push a file at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ASCENDING

from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.job_store import JobStore, UnreadableJob, read_job
from exporter.contracts.base import utcnow
from exporter.contracts.job import FileTransfer, Job
from exporter.domain.job_life import JobStatus
from exporter.domain.transfers import TransferStatus

NAMED = "spec.request.transferLocationId"


class JobTransfers(JobStore):
    async def plan(
        self, job_id: str, location_id: str, name: str | None, transfers: list[FileTransfer]
    ) -> bool:
        """Writes the job's transfer log, unless one is there already: True for one caller."""
        result = await self._collection.update_one(
            {"_id": job_id, "transfers": {"$exists": False}},
            {
                "$set": {
                    "transferLocationId": location_id,
                    "transferLocationName": name,
                    "transfers": [transfer.to_stored() for transfer in transfers],
                }
            },
        )
        return result.modified_count == 1

    async def claim(
        self, job_id: str, index: int, status: TransferStatus, attempts: int, lease: timedelta
    ) -> bool:
        """``status`` (pending, retrying, or pushing past its lease) → pushing, attempt + 1."""
        entry = f"transfers.{index}"
        now = utcnow()
        query: Document = {"_id": job_id, f"{entry}.status": status.value, f"{entry}.attempts": attempts}
        if status is TransferStatus.PUSHING:
            query[f"{entry}.leaseUntil"] = {"$lt": now}
        result = await self._collection.update_one(
            query,
            {
                "$set": {
                    f"{entry}.status": TransferStatus.PUSHING.value,
                    f"{entry}.attempts": attempts + 1,
                    f"{entry}.updatedAt": now,
                    f"{entry}.leaseUntil": now + lease,
                    f"{entry}.nextAttemptAt": None,
                }
            },
        )
        return result.modified_count == 1

    async def record(
        self,
        job_id: str,
        index: int,
        attempt: int,
        status: TransferStatus,
        error: str | None,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        """pushing (attempt ``attempt``) → done/retrying/failed; nothing once the claim is lost."""
        entry = f"transfers.{index}"
        now = utcnow()
        fields: Document = {
            f"{entry}.lastError": error,
            f"{entry}.updatedAt": now,
            f"{entry}.leaseUntil": None,
            f"{entry}.nextAttemptAt": next_attempt_at,
        }
        if status is TransferStatus.DONE:
            fields[f"{entry}.doneAt"] = now
        fields[f"{entry}.status"] = status.value
        result = await self._collection.update_one(
            {"_id": job_id, f"{entry}.status": TransferStatus.PUSHING.value, f"{entry}.attempts": attempt},
            {"$set": fields},
        )
        return result.modified_count == 1

    async def with_open_transfers(self, completed_before: datetime, limit: int) -> list[Job | UnreadableJob]:
        """Done jobs that name a location and whose transfers no one is known to be working on
        (once ``completed_before`` has passed: the event is probably being handled right now):
        not planned, pending, retrying when due, pushing past their lease."""
        now = utcnow()
        due = [
            {"status": TransferStatus.PENDING.value},
            {"status": TransferStatus.RETRYING.value, "nextAttemptAt": {"$lte": now}},
            {"status": TransferStatus.PUSHING.value, "leaseUntil": {"$lt": now}},
        ]
        cursor = (
            self._collection.find(
                {
                    "status": JobStatus.DONE.value,
                    "$or": [
                        {NAMED: {"$type": "string"}, "transfers": {"$exists": False}},
                        *({"transfers": {"$elemMatch": entry}} for entry in due),
                    ],
                    "completedAt": {"$lte": completed_before},
                }
            )
            .sort([("completedAt", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [read_job(document, Job) async for document in cursor]

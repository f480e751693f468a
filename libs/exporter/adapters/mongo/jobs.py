"""The jobs collection: every run of an export request and its history.

Each transition is a guarded ``update_one`` whose filter states the allowed source status,
so concurrent or redelivered work can never move a job twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import JOBS, Document
from exporter.contracts.base import utcnow
from exporter.contracts.job import ACTIVE_STATUSES, JobResult, JobSpec, JobStatus
from exporter.notifications.policy import DeliveryStatus

log = logging.getLogger(__name__)


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


def stored_result(job: Document) -> JobResult:
    """What a finished job's document says its run produced."""
    aliases = [info.alias or name for name, info in JobResult.model_fields.items()]
    return JobResult.model_validate({alias: job[alias] for alias in aliases if job.get(alias) is not None})


@dataclass(frozen=True)
class DeliveryClaim:
    """The deliveries of one job to claim (index → key, attempts made) and to record as skipped
    (index → reason); see ``JobRepository.claim_deliveries``.

    ``seen``, the job's delivery entries as read, makes the claim hold only if none of them has
    changed since: stricter than a condition per claimed entry, and one condition instead of
    two per entry (the embedded store pays for each field of a filter).
    """

    job_id: str
    claims: Mapping[int, tuple[str, int]]
    skips: Mapping[int, str] = field(default_factory=dict)
    seen: list[Document] | None = None

    def update(self, now: datetime, lease: timedelta) -> tuple[Document, Document]:
        """The compare-and-set: the filter, and the update that applies when it matches."""
        query: Document = {"_id": self.job_id}
        if self.seen is not None:
            query["notifications"] = self.seen
        fields: Document = {}
        for index, (key, attempts) in self.claims.items():
            entry = f"notifications.{index}"
            if self.seen is None:
                query[f"{entry}.status"] = {
                    "$in": [DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value]
                }
                query[f"{entry}.attempts"] = attempts
            fields |= {
                f"{entry}.status": DeliveryStatus.SENDING.value,
                f"{entry}.key": key,
                f"{entry}.updatedAt": now,
                f"{entry}.leaseUntil": now + lease,
                f"{entry}.nextAttemptAt": None,
                f"{entry}.attempts": attempts + 1,
            }
        for index, reason in self.skips.items():
            entry = f"notifications.{index}"
            if self.seen is None:
                query[f"{entry}.status"] = DeliveryStatus.PENDING.value
            fields |= {
                f"{entry}.status": DeliveryStatus.SKIPPED.value,
                f"{entry}.detail": reason,
                f"{entry}.updatedAt": now,
            }
        return query, {"$set": fields}


class JobRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[JOBS]

    async def add(self, document: Document, session: AsyncClientSession | None = None) -> None:
        """Raises DuplicateKeyError when the job exists: its id derives from request and time."""
        await self._collection.insert_one(document, session=session)

    async def add_many(self, documents: list[Document], session: AsyncClientSession) -> None:
        """All or nothing inside ``session``'s transaction; a duplicate raises BulkWriteError."""
        await self._collection.insert_many(documents, session=session)

    async def existing(self, job_ids: list[str], session: AsyncClientSession) -> set[str]:
        """Which of ``job_ids`` are already stored."""
        cursor = self._collection.find({"_id": {"$in": job_ids}}, {"_id": 1}, session=session)
        return {document["_id"] async for document in cursor}

    async def get(self, job_id: str, tenant: str | None = None) -> Document | None:
        query: Document = {"_id": job_id}
        if tenant is not None:
            query["tenant"] = tenant
        return await self._collection.find_one(query)

    async def start(self, job_id: str, lease: timedelta) -> datetime | None:
        """notProcessed → inProgress, or take over one whose renderer's lease ran out.

        Returns the run's ``startedAt``, which tells this run from a later one that took over
        (``heartbeat``, ``finish``); None when the job is not this caller's to run.
        """
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
        return now if result.modified_count == 1 else None

    async def heartbeat(
        self, job_id: str, rows: int, lease: timedelta, started_at: datetime | None = None
    ) -> bool:
        """Progress and lease renewal; False once the job left inProgress (e.g. cancelled), or,
        given the run's ``started_at``, once another run took it over."""
        now = utcnow()
        result = await self._collection.update_one(
            _running(job_id, started_at),
            {"$set": {"progress.rows": rows, "updatedAt": now, "leaseUntil": now + lease}},
        )
        return result.modified_count == 1

    async def finish(
        self,
        job_id: str,
        result: JobResult,
        session: AsyncClientSession | None = None,
        started_at: datetime | None = None,
    ) -> bool:
        """inProgress → done/failed/cancelled with what the run produced (the run that started at
        ``started_at``, when given)."""
        update = result.to_document()
        update.update({"updatedAt": utcnow(), "leaseUntil": None, "progress.rows": result.row_count})
        outcome = await self._collection.update_one(
            _running(job_id, started_at), {"$set": update}, session=session
        )
        return outcome.modified_count == 1

    # Deliveries: ``notifications[i]`` of a job, one per message (see notifications.policy). Every
    # step is a compare-and-set on the entry's status and attempt count, so two notifiers, or a
    # notifier and its own redelivered event, can never both send one message.

    async def claim_deliveries(
        self,
        job_id: str,
        claims: Mapping[int, tuple[str, int]],
        lease: timedelta,
        skips: Mapping[int, str] | None = None,
        seen: list[Document] | None = None,
    ) -> bool:
        """In one write: each ``claims`` entry (index → key, attempts made) pending/retrying →
        sending, the intent recorded before sending; each ``skips`` entry pending → skipped.

        All or nothing, and True for exactly one caller. ``leaseUntil`` says when a send that was
        never recorded counts as cut off. ``seen``: see ``DeliveryClaim``.
        """
        claim = DeliveryClaim(job_id, claims, skips or {}, seen)
        result = await self._collection.update_one(*claim.update(utcnow(), lease))
        return result.modified_count == 1

    async def claim_many(
        self, claims: list[DeliveryClaim], lease: timedelta, session: AsyncClientSession
    ) -> bool:
        """``claim_deliveries`` for many jobs in ``session``'s transaction: all of them, or none
        (False, and the transaction aborted).

        One commit for them all: the store pays per commit (it waits for the disk), not per job.
        """
        now = utcnow()
        written = await self._collection.bulk_write(
            [UpdateOne(*claim.update(now, lease)) for claim in claims], ordered=False, session=session
        )
        if written.modified_count < len(claims):
            # Another notifier holds some of them, or recorded something meanwhile.
            await session.abort_transaction()
            return False
        return True

    async def record_results(
        self, results: list[DeliveryResult], session: AsyncClientSession | None = None
    ) -> None:
        """Writes delivery results, one update per job (see ``delivery_result``)."""
        updates = _per_job(results)
        written = await self._collection.bulk_write(updates, ordered=False, session=session)
        if written.modified_count < len(updates):
            # Every result for some job came after its claim was cut off (see delivery_result).
            # One of several for a job goes unnoticed here: its entry already says it was cut off.
            log.warning("delivery results came after their claims were cut off, and were not recorded")

    async def get_many(self, job_ids: list[str]) -> list[Document]:
        """The jobs among ``job_ids`` that exist, in one query."""
        return [job async for job in self._collection.find({"_id": {"$in": job_ids}})]

    async def cut_off_delivery(self, job_id: str, index: int, attempt: int, reason: str) -> bool:
        """sending past its lease → failed: the notifier stopped mid-send (see notifier.delivery)."""
        entry = f"notifications.{index}"
        now = utcnow()
        result = await self._collection.update_one(
            {
                "_id": job_id,
                f"{entry}.status": DeliveryStatus.SENDING.value,
                f"{entry}.attempts": attempt,
                f"{entry}.leaseUntil": {"$lt": now},
            },
            {
                "$set": {
                    f"{entry}.status": DeliveryStatus.FAILED.value,
                    f"{entry}.lastError": reason,
                    f"{entry}.updatedAt": now,
                    f"{entry}.leaseUntil": None,
                }
            },
        )
        return result.modified_count == 1

    async def with_open_deliveries(self, completed_before: datetime, limit: int) -> list[Document]:
        """Finished jobs with a delivery no one is known to be working on, oldest first.

        Pending ones only once ``completed_before`` has passed (their ``export.completed`` is
        probably being handled right now); retrying ones when due; sending ones past their lease.
        """
        now = utcnow()
        cursor = (
            self._collection.find(
                {
                    "status": {"$in": [JobStatus.DONE.value, JobStatus.FAILED.value]},
                    "$or": [
                        {"notifications": {"$elemMatch": due}}
                        for due in (
                            {"status": DeliveryStatus.PENDING.value},
                            {"status": DeliveryStatus.RETRYING.value, "nextAttemptAt": {"$lte": now}},
                            {"status": DeliveryStatus.SENDING.value, "leaseUntil": {"$lt": now}},
                        )
                    ],
                    "completedAt": {"$lte": completed_before},
                }
            )
            .sort([("completedAt", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [document async for document in cursor]

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

    async def count_active(self, tenant: str, owner: str, session: AsyncClientSession) -> int:
        """Queued plus running jobs of one user: what the quota limits."""
        return await self._collection.count_documents(
            {"tenant": tenant, "owner": owner, "status": {"$in": [s.value for s in ACTIVE_STATUSES]}},
            session=session,
        )

    async def active_for_targets(
        self, tenant: str, targets: list[str], session: AsyncClientSession
    ) -> Document | None:
        """A queued or running job of the tenant on any of ``targets``, if there is one."""
        return await self._collection.find_one(
            {
                "tenant": tenant,
                "targets": {"$in": targets},
                "status": {"$in": [s.value for s in ACTIVE_STATUSES]},
            },
            {"_id": 1, "status": 1},
            session=session,
        )

    async def active_counts(
        self, owners: set[tuple[str, str]], session: AsyncClientSession
    ) -> dict[tuple[str, str], int]:
        """Queued plus running jobs per (tenant, owner) of ``owners``: one query per tenant."""
        counts: dict[tuple[str, str], int] = {}
        for tenant, users in _by_tenant(owners).items():
            match = {
                "tenant": tenant,
                "owner": {"$in": users},
                "status": {"$in": [s.value for s in ACTIVE_STATUSES]},
            }
            group = {"_id": "$owner", "count": {"$sum": 1}}
            cursor = await self._collection.aggregate([{"$match": match}, {"$group": group}], session=session)
            counts |= {(tenant, row["_id"]): row["count"] async for row in cursor}
        return counts

    async def active_on_targets(
        self, targets: set[tuple[str, str]], session: AsyncClientSession
    ) -> list[Document]:
        """Queued or running jobs on any (tenant, target) of ``targets``: one query per tenant.

        One tenant per query, and the status in a stage of its own: the embedded store planned a
        scan of the whole collection otherwise (10 s for 500 targets among 10,000 jobs, against
        0.19 s so)."""
        busy = []
        for tenant, keys in _by_tenant(targets).items():
            pipeline: list[Document] = [
                {"$match": {"tenant": tenant, "targets": {"$in": keys}}},
                {"$match": {"status": {"$in": [s.value for s in ACTIVE_STATUSES]}}},
                {"$project": {"_id": 1, "status": 1, "tenant": 1, "targets": 1, "requestId": 1}},
            ]
            busy += [job async for job in await self._collection.aggregate(pipeline, session=session)]
        return busy

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
            _running(job["_id"], job["startedAt"]),
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
            _running(job["_id"], job.get("startedAt")),
            {"$set": update},
            session=session,
        )
        return outcome.modified_count == 1

    async def expirable(self, created_before: datetime, limit: int) -> list[Document]:
        """Old jobs that may still have files: a skipped one never had any, and keeps its reason."""
        cursor = self._collection.find(
            {
                "createdAt": {"$lt": created_before},
                "status": {"$nin": [JobStatus.EXPIRED.value, JobStatus.SKIPPED.value]},
            },
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


def _by_tenant(keys: set[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for tenant, value in sorted(keys):
        grouped.setdefault(tenant, []).append(value)
    return grouped


def _running(job_id: str, started_at: datetime | None) -> Document:
    query: Document = {"_id": job_id, "status": JobStatus.IN_PROGRESS.value}
    if started_at is not None:
        query["startedAt"] = started_at
    return query


@dataclass(frozen=True)
class DeliveryResult:
    """A write of one attempt's outcome: the entry it is for, the attempt whose claim it needs
    to still hold, and the entry's fields it sets.
    """

    job_id: str
    index: int
    attempt: int
    fields: Document

    def array_filter(self) -> tuple[str, Document]:
        """The entry, named for an ``arrayFilters`` update: still claimed by this attempt."""
        name = f"e{self.index}"
        return name, {
            f"{name}.index": self.index,
            f"{name}.status": DeliveryStatus.SENDING.value,
            f"{name}.attempts": self.attempt,
        }


def delivery_result(
    job_id: str,
    index: int,
    attempt: int,
    status: DeliveryStatus,
    *,
    recipients: list[str],
    sent_to: list[str],
    refused: dict[str, str],
    error: str | None = None,
    detail: str | None = None,
    next_attempt_at: datetime | None = None,
) -> DeliveryResult:
    """sending (attempt ``attempt``) → sent/failed/retrying, with what the attempt reached.

    It changes nothing once the claim is no longer the caller's: its lease ran out, and the send
    was declared cut off meanwhile.
    """
    now = utcnow()
    fields: Document = {
        "recipients": recipients,
        "sentTo": sent_to,
        # A list, not a mapping: addresses have dots, which field names must not.
        "refused": [{"recipient": r, "reason": reason} for r, reason in refused.items()],
        "lastError": error,
        "detail": detail,
        "updatedAt": now,
        "leaseUntil": None,
        "nextAttemptAt": next_attempt_at,
    }
    if status is DeliveryStatus.SENT:
        fields["sentAt"] = now
    # Last: the embedded store checks an array filter again before each field it sets, so once
    # the status has changed the entry no longer matches (MongoDB checks the document as it was).
    fields["status"] = status.value
    return DeliveryResult(job_id, index, attempt, fields)


def _per_job(results: list[DeliveryResult]) -> list[UpdateOne]:
    """One write per job for the results of its messages: MongoDB pays per document written.

    Each entry is picked by an array filter that also checks its claim, so each result applies
    on its own: one that came after its claim was cut off changes nothing, the others still
    apply. The filter on ``_id`` alone is the embedded store's fast path (it plans, and pays for,
    every field of a query).
    """
    by_job: dict[str, dict[int, DeliveryResult]] = {}
    for result in results:
        by_job.setdefault(result.job_id, {})[result.index] = result
    updates = []
    for job_id, job_results in by_job.items():
        fields: Document = {}
        filters: list[Mapping[str, Any]] = []
        for result in job_results.values():
            name, array_filter = result.array_filter()
            fields |= {f"notifications.$[{name}].{field}": value for field, value in result.fields.items()}
            filters.append(array_filter)
        updates.append(UpdateOne({"_id": job_id}, {"$set": fields}, array_filters=filters))
    return updates

"""A job's deliveries: ``notifications[i]``, one per message (see ``exporter.domain.job_life``).

What the notifier asks of the jobs collection. Every step is a compare-and-set on the entry's
status and attempt count, so two notifiers, or a notifier and its own redelivered event, can
never both send one message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.job_store import JobStore, UnreadableJob, read_job
from exporter.contracts.base import utcnow
from exporter.contracts.job import Delivery, Job
from exporter.domain.job_life import CLAIMABLE, DeliveryStatus, JobStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryClaim:
    """The deliveries of one job to claim (index → key, attempts made) and to record as skipped
    (index → reason); see ``JobRepository.claim_deliveries``.

    ``seen``, the job's deliveries as read, makes the claim hold only if none of them has
    changed since: stricter than a condition per claimed entry, and one condition instead of
    two per entry (the embedded store pays for each field of a filter).
    """

    job_id: str
    claims: Mapping[int, tuple[str, int]]
    skips: Mapping[int, str] = field(default_factory=dict)
    seen: Sequence[Delivery] | None = None

    def update(self, now: datetime, lease: timedelta) -> tuple[Document, Document]:
        """The compare-and-set: the filter, and the update that applies when it matches."""
        query: Document = {"_id": self.job_id}
        if self.seen is not None:
            query["notifications"] = [delivery.to_stored() for delivery in self.seen]
        fields: Document = {}
        for index, (key, attempts) in self.claims.items():
            entry = f"notifications.{index}"
            if self.seen is None:
                query[f"{entry}.status"] = {"$in": [s.value for s in DeliveryStatus if s in CLAIMABLE]}
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


class JobDeliveries(JobStore):
    async def claim_deliveries(
        self,
        job_id: str,
        claims: Mapping[int, tuple[str, int]],
        lease: timedelta,
        skips: Mapping[int, str] | None = None,
        seen: Sequence[Delivery] | None = None,
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

    async def with_open_deliveries(self, completed_before: datetime, limit: int) -> list[Job | UnreadableJob]:
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
        return [read_job(document, Job) async for document in cursor]


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

"""The requests collection: export requests and their schedule state."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.results import UpdateResult

from exporter.adapters.mongo.client import REQUESTS, Document, multi_document_write
from exporter.contracts.request import ExportRequest, ExportType


def _to_request(document: Document) -> ExportRequest:
    fields = {k: v for k, v in document.items() if k not in {"_id", "schedule"}}
    return ExportRequest.model_validate({"id": document["_id"], **fields})


def request_document(request: ExportRequest, next_run_at: datetime | None) -> Document:
    document = request.to_document()
    document["_id"] = document.pop("id")
    document["schedule"] = {"nextRunAt": next_run_at, "leaseToken": None, "leaseUntil": None}
    return document


@dataclass(frozen=True, slots=True)
class Advance:
    """A schedule moving on: from ``due_at`` (its guard) to ``next_run_at``."""

    request_id: str
    due_at: datetime
    next_run_at: datetime | None
    last_run_at: datetime | None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A stored request with its schedule state."""

    request: ExportRequest
    next_run_at: datetime | None
    last_run_at: datetime | None

    @property
    def status(self) -> RequestStatus:
        if self.request.deleted_at is not None:
            return "deleted"
        return "active" if self.next_run_at is not None else "finished"


RequestStatus = Literal["active", "finished", "deleted"]


def _to_record(document: Document) -> RequestRecord:
    schedule = document.get("schedule") or {}
    return RequestRecord(_to_request(document), schedule.get("nextRunAt"), schedule.get("lastRunAt"))


@dataclass(frozen=True, slots=True)
class RequestFilter:
    tenant: str
    # None: every owner of the tenant; otherwise these owners' requests plus ``ids``.
    owners: frozenset[str] | None = None
    ids: frozenset[str] = frozenset()
    type: ExportType | None = None
    status: RequestStatus | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def query(self) -> Document:
        query: Document = {"tenant": self.tenant}
        if self.owners is not None:
            query["$or"] = [{"owner": {"$in": sorted(self.owners)}}, {"_id": {"$in": sorted(self.ids)}}]
        if self.type is not None:
            query["type"] = self.type.value
        if self.status == "deleted":
            query["deletedAt"] = {"$ne": None}
        else:
            query["deletedAt"] = None
            if self.status == "active":
                query["schedule.nextRunAt"] = {"$ne": None}
            elif self.status == "finished":
                query["schedule.nextRunAt"] = None
        created: Document = {}
        if self.created_from is not None:
            created["$gte"] = self.created_from
        if self.created_to is not None:
            created["$lt"] = self.created_to
        if created:
            query["createdAt"] = created
        return query


class RequestRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[REQUESTS]

    async def get(self, tenant: str, request_id: str) -> RequestRecord | None:
        document = await self._collection.find_one({"_id": request_id, "tenant": tenant})
        return None if document is None else _to_record(document)

    async def get_many(self, tenant: str, ids: list[str]) -> list[RequestRecord]:
        cursor = self._collection.find({"_id": {"$in": ids}, "tenant": tenant})
        return [_to_record(document) async for document in cursor]

    async def page(self, where: RequestFilter, skip: int, limit: int) -> list[RequestRecord]:
        cursor = self._collection.find(where.query()).sort([("createdAt", DESCENDING), ("_id", ASCENDING)])
        return [_to_record(document) async for document in cursor.skip(skip).limit(limit)]

    async def count(self, where: RequestFilter) -> int:
        return await self._collection.count_documents(where.query())

    async def replace(
        self,
        request: ExportRequest,
        expected_version: int,
        next_run_at: datetime | None,
        session: AsyncClientSession | None = None,
    ) -> bool:
        """Stores a new version of a live request; False if it changed or was deleted meanwhile."""
        document = request.to_document()
        document.pop("id")
        result = await self._collection.update_one(
            {"_id": request.id, "version": expected_version, "deletedAt": None},
            {"$set": {**document, "schedule.nextRunAt": next_run_at}},
            session=session,
        )
        return result.modified_count == 1

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[RequestRecord]:
        """Leases due requests in one batch; two schedulers never hold the same one."""
        free = {
            "schedule.nextRunAt": {"$lte": now},
            "deletedAt": None,
            "$or": [{"schedule.leaseUntil": None}, {"schedule.leaseUntil": {"$lt": now}}],
        }
        order = [("schedule.nextRunAt", ASCENDING), ("_id", ASCENDING)]
        due = self._collection.find(free).sort(order).limit(limit)
        batch = [document async for document in due]
        if not batch:
            return []
        # Claim "everything up to the last one found" rather than "these ids": a range is cheap
        # for any store, while a long $in list is matched element by element by some.
        last_at, last_id = batch[-1]["schedule"]["nextRunAt"], batch[-1]["_id"]
        token = uuid.uuid4().hex
        range_filter = {
            **free,
            "schedule.nextRunAt": {"$lte": last_at},
            "$and": [{"$or": [{"schedule.nextRunAt": {"$lt": last_at}}, {"_id": {"$lte": last_id}}]}],
        }

        async def lease_range(session: AsyncClientSession) -> UpdateResult:
            return await self._collection.update_many(
                range_filter,
                {"$set": {"schedule.leaseToken": token, "schedule.leaseUntil": now + lease}},
                session=session,
            )

        claim = await multi_document_write(self._collection, lease_range)
        # Nobody else moved: what we read is what we hold. (Should a replica have taken one and
        # another come due meanwhile, the guarded advance still fires each run only once.)
        if claim.modified_count == len(batch):
            return [_to_record(document) for document in batch]
        claimed = self._collection.find({"schedule.leaseToken": token})
        return [_to_record(document) async for document in claimed]

    async def advance(self, advance: Advance, session: AsyncClientSession | None = None) -> bool:
        """Moves one schedule on; False if someone else already did."""
        return await self.advance_many([advance], session) == 1

    async def advance_many(self, advances: list[Advance], session: AsyncClientSession | None = None) -> int:
        """Moves schedules on in one round trip; returns how many were still where expected."""
        result = await self._collection.bulk_write(
            [
                UpdateOne(
                    {"_id": advance.request_id, "schedule.nextRunAt": advance.due_at},
                    {
                        "$set": {
                            "schedule.nextRunAt": advance.next_run_at,
                            "schedule.lastRunAt": advance.last_run_at,
                            "schedule.leaseToken": None,
                            "schedule.leaseUntil": None,
                        }
                    },
                )
                for advance in advances
            ],
            ordered=False,
            session=session,
        )
        return result.modified_count


def new_request_id() -> str:
    return uuid.uuid4().hex

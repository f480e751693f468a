"""The requests collection: export requests and their schedule state."""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import ValidationError
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import REQUESTS, Document
from exporter.adapters.mongo.unreadable import unreadable_because
from exporter.contracts.request import ExportRequest, ExportType


def _to_request(document: Document) -> ExportRequest:
    fields = {k: v for k, v in document.items() if k not in {"_id", "schedule"}}
    return ExportRequest.model_validate({"id": document["_id"], **fields})


# Schedules are split into this many shards, each read on its own: a replica reading one shard
# rarely meets another replica there, and a query over one shard's due runs stays small.
SCHEDULE_SHARDS = 16


def schedule_shard(request_id: str) -> int:
    """The shard of a request's schedule: the same in every process (crc32, not salted hash())."""
    return zlib.crc32(request_id.encode()) % SCHEDULE_SHARDS


def request_document(
    request: ExportRequest, next_run_at: datetime | None, last_run_at: datetime | None = None
) -> Document:
    document = request.to_document()
    document["_id"] = document.pop("id")
    document["schedule"] = {"nextRunAt": next_run_at, "shard": schedule_shard(request.id)}
    if last_run_at is not None:
        document["schedule"]["lastRunAt"] = last_run_at
    return document


@dataclass(frozen=True, slots=True)
class Advance:
    """A schedule moving on to ``next_run_at``, ``last_run_at`` being the latest run fired; or,
    with ``paused_reason``, stopped until its owner edits the request."""

    request_id: str
    next_run_at: datetime | None
    last_run_at: datetime | None
    paused_at: datetime | None = None
    paused_reason: str | None = None

    def update(self) -> Document:
        schedule: Document = {"nextRunAt": self.next_run_at, "lastRunAt": self.last_run_at}
        if self.paused_reason is not None:
            schedule |= {"pausedAt": self.paused_at, "pausedReason": self.paused_reason}
        return {"$set": {f"schedule.{name}": value for name, value in schedule.items()}}


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A stored request with its schedule state."""

    request: ExportRequest
    next_run_at: datetime | None
    last_run_at: datetime | None
    paused_at: datetime | None = None
    paused_reason: str | None = None

    @property
    def status(self) -> RequestStatus:
        if self.request.deleted_at is not None:
            return "deleted"
        if self.paused_at is not None:
            return "paused"
        return "active" if self.next_run_at is not None else "finished"

    @property
    def identity(self) -> Identity:
        request = self.request
        return Identity(request.id, request.tenant, request.owner, request.version)


RequestStatus = Literal["active", "paused", "finished", "deleted"]


@dataclass(frozen=True, slots=True)
class Identity:
    """What names a stored request and its owner, even when the rest of it no longer validates."""

    request_id: str
    tenant: str
    owner: str
    version: int


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A stored request that no longer validates as ``ExportRequest`` (written by an older
    version, by hand, or by a bug): the scheduler pauses it rather than fail on it."""

    identity: Identity
    last_run_at: datetime | None
    problem: str


def _to_record(document: Document) -> RequestRecord:
    schedule = document.get("schedule") or {}
    return RequestRecord(
        _to_request(document),
        schedule.get("nextRunAt"),
        schedule.get("lastRunAt"),
        schedule.get("pausedAt"),
        schedule.get("pausedReason"),
    )


def _raw(document: Document, name: str, kind: type[str] | type[int], default: str | int) -> str | int:
    value = document.get(name)
    return value if isinstance(value, kind) and not isinstance(value, bool) else default


def _to_due(document: Document) -> RequestRecord | Unreadable:
    try:
        return _to_record(document)
    except ValidationError as error:
        identity = Identity(
            str(document["_id"]),
            str(_raw(document, "tenant", str, "")),
            str(_raw(document, "owner", str, "")),
            int(_raw(document, "version", int, 0)),
        )
        schedule = document.get("schedule") or {}
        return Unreadable(identity, schedule.get("lastRunAt"), unreadable_because(error))


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
            elif self.status == "paused":
                query["schedule.pausedAt"] = {"$ne": None}
            elif self.status == "finished":
                query["schedule.nextRunAt"] = None
                query["schedule.pausedAt"] = None
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

    async def add(self, document: Document, session: AsyncClientSession) -> None:
        """A ``request_document``, inside the caller's transaction."""
        await self._collection.insert_one(document, session=session)

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
        """Stores a new version of a live request; False if it changed or was deleted meanwhile.

        A paused request resumes: its new version is planned afresh."""
        document = request.to_document()
        document.pop("id")
        result = await self._collection.update_one(
            {"_id": request.id, "version": expected_version, "deletedAt": None},
            {
                "$set": {**document, "schedule.nextRunAt": next_run_at},
                "$unset": {"schedule.pausedAt": "", "schedule.pausedReason": ""},
            },
            session=session,
        )
        return result.modified_count == 1

    async def due(
        self,
        shard: int,
        now: datetime,
        limit: int,
        session: AsyncClientSession | None,
        request_id: str | None = None,
    ) -> list[RequestRecord | Unreadable]:
        """Up to ``limit`` requests of ``shard`` due at ``now``, the longest due first; one that
        no longer validates comes as ``Unreadable``, so that it cannot fail the others.

        Read inside the transaction that fires them: its snapshot is the guard. Should another
        replica or an edit change one of them before ``advance_many`` writes it, the write
        conflicts and the transaction aborts (see ``scheduler.firing``). ``request_id``: that one
        request, if it is due."""
        due: Document = {"schedule.shard": shard, "schedule.nextRunAt": {"$lte": now}, "deletedAt": None}
        if request_id is not None:  # that one alone, if due
            due["_id"] = request_id
        cursor = self._collection.find(due, session=session).sort("schedule.nextRunAt", ASCENDING)
        return [_to_due(document) async for document in cursor.limit(limit)]

    async def advance_many(self, advances: list[Advance], session: AsyncClientSession) -> None:
        """Moves schedules read by ``due`` in the same transaction on, in one round trip."""
        await self._collection.bulk_write(
            [UpdateOne({"_id": advance.request_id}, advance.update()) for advance in advances],
            ordered=False,
            session=session,
        )


def new_request_id() -> str:
    return uuid.uuid4().hex

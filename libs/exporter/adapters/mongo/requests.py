"""The requests collection: export requests and their schedule state."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import REQUESTS, Document
from exporter.contracts.request import ExportRequest


def _to_request(document: Document) -> ExportRequest:
    fields = {k: v for k, v in document.items() if k not in {"_id", "schedule"}}
    return ExportRequest.model_validate({"id": document["_id"], **fields})


class RequestRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[REQUESTS]

    async def add(
        self, request: ExportRequest, next_run_at: datetime | None, session: AsyncClientSession | None = None
    ) -> None:
        document = request.to_document()
        document["_id"] = document.pop("id")
        document["schedule"] = {"nextRunAt": next_run_at, "leaseToken": None, "leaseUntil": None}
        await self._collection.insert_one(document, session=session)

    async def get(self, tenant: str, request_id: str) -> ExportRequest | None:
        document = await self._collection.find_one({"_id": request_id, "tenant": tenant})
        return None if document is None else _to_request(document)

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta
    ) -> list[tuple[ExportRequest, datetime]]:
        """Leases due requests in one batch; two schedulers never hold the same one."""
        free = {
            "schedule.nextRunAt": {"$lte": now},
            "deletedAt": None,
            "$or": [{"schedule.leaseUntil": None}, {"schedule.leaseUntil": {"$lt": now}}],
        }
        due = self._collection.find(free, {"_id": 1}).sort("schedule.nextRunAt", ASCENDING).limit(limit)
        ids = [document["_id"] async for document in due]
        if not ids:
            return []
        token = uuid.uuid4().hex
        await self._collection.update_many(
            {"_id": {"$in": ids}, **free},
            {"$set": {"schedule.leaseToken": token, "schedule.leaseUntil": now + lease}},
        )
        claimed = self._collection.find({"schedule.leaseToken": token})
        return [(_to_request(document), document["schedule"]["nextRunAt"]) async for document in claimed]

    async def advance(
        self,
        request_id: str,
        fired_at: datetime,
        next_run_at: datetime | None,
        session: AsyncClientSession | None = None,
    ) -> bool:
        """Moves the schedule past ``fired_at``; False if someone else already did."""
        result = await self._collection.update_one(
            {"_id": request_id, "schedule.nextRunAt": fired_at},
            {
                "$set": {
                    "schedule.nextRunAt": next_run_at,
                    "schedule.lastRunAt": fired_at,
                    "schedule.leaseToken": None,
                    "schedule.leaseUntil": None,
                }
            },
            session=session,
        )
        return result.modified_count == 1

    async def schedule_of(self, request_id: str) -> dict[str, Any] | None:
        document = await self._collection.find_one({"_id": request_id}, {"schedule": 1})
        return None if document is None else dict(document["schedule"])


def new_request_id() -> str:
    return uuid.uuid4().hex

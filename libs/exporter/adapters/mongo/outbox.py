"""The outbox collection: events written in the same transaction as the state they announce."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import OUTBOX, Document, multi_document_write
from exporter.contracts.base import utcnow
from exporter.contracts.events import Envelope
from exporter.topics import Topic


def outbox_document(
    topic: Topic, key: str, event: Envelope[Any], lease_until: datetime | None = None
) -> Document:
    """``lease_until`` set: the writing process will publish it itself, see ``OutboxRelay.add``."""
    return {
        "_id": event.id,
        "topic": topic.value,
        "key": key,
        "payload": event.to_wire(),
        "createdAt": utcnow(),
        "leaseUntil": lease_until,
    }


class OutboxRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[OUTBOX]

    async def add(self, document: Document, session: AsyncClientSession | None = None) -> None:
        """Queues an ``outbox_document``. An id queued before raises DuplicateKeyError, which also
        aborts the caller's transaction: an event is never silently dropped inside one."""
        await self._collection.insert_one(document, session=session)

    async def add_many(self, documents: list[Document], session: AsyncClientSession) -> None:
        await self._collection.insert_many(documents, session=session)

    async def claim(self, limit: int, lease: timedelta) -> list[Document]:
        """Leases up to ``limit`` unpublished events; a crashed relay's lease simply runs out."""
        now = utcnow()
        free = {"$or": [{"leaseUntil": None}, {"leaseUntil": {"$lt": now}}]}
        candidates = self._collection.find(free, {"_id": 1}).sort("createdAt", ASCENDING).limit(limit)
        ids = [document["_id"] async for document in candidates]
        if not ids:
            return []
        token = uuid.uuid4().hex

        async def lease_them(session: AsyncClientSession) -> None:
            await self._collection.update_many(
                {"_id": {"$in": ids}, **free},
                {"$set": {"leaseToken": token, "leaseUntil": now + lease}},
                session=session,
            )

        await multi_document_write(self._collection, lease_them)
        claimed = self._collection.find({"leaseToken": token}).sort("createdAt", ASCENDING)
        return [document async for document in claimed]

    async def mark_published(self, ids: list[str]) -> None:
        """Published events leave the outbox: it holds only what is still owed, so each pass
        stays cheap however many events went out before (Kafka keeps the history)."""

        async def delete(session: AsyncClientSession) -> None:
            await self._collection.delete_many({"_id": {"$in": ids}}, session=session)

        await multi_document_write(self._collection, delete)

    async def release(self, ids: list[str]) -> None:
        """Hands events back at once after a failed publish, so the next pass retries them."""

        async def unlease(session: AsyncClientSession) -> None:
            await self._collection.update_many(
                {"_id": {"$in": ids}}, {"$set": {"leaseUntil": None}}, session=session
            )

        await multi_document_write(self._collection, unlease)

    async def pending_count(self) -> int:
        return await self._collection.count_documents({})

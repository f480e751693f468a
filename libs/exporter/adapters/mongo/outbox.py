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


def outbox_message(topic: Topic, key: str, event: Envelope[Any]) -> Document:
    return {"id": event.id, "topic": topic.value, "key": key, "payload": event.to_wire()}


def outbox_document(messages: list[Document], lease_until: datetime | None = None) -> Document:
    """One outbox entry for ``messages`` (``outbox_message``s, published in this order).

    A writer that announces many changes at once (a scheduler pass firing hundreds of runs)
    queues them as one entry: one insert and one delete instead of one per event, which is most
    of the outbox's cost. The entry's id is its first event's: an event queued twice is refused.
    ``lease_until`` set: the writing process will publish it itself, see ``OutboxRelay.add``.
    """
    assert messages, "an outbox entry holds at least one event"
    return {"_id": messages[0]["id"], "messages": messages, "createdAt": utcnow(), "leaseUntil": lease_until}


def merged_entry(entries: list[Document]) -> Document:
    """One entry holding ``entries``' events, in order (for writers that commit many at once)."""
    return {**entries[0], "messages": [message for entry in entries for message in entry["messages"]]}


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
        """Published entries leave the outbox: it holds only what is still owed, so each pass
        stays cheap however many events went out before (Kafka keeps the history)."""

        async def delete(session: AsyncClientSession) -> None:
            await self._collection.delete_many({"_id": {"$in": ids}}, session=session)

        await multi_document_write(self._collection, delete)

    async def retain(self, entry_id: str, unsent: list[Document]) -> None:
        """Keeps only the events of an entry that did not go out, and hands it back."""
        unleased = {"messages": unsent, "leaseUntil": None}
        await self._collection.update_one({"_id": entry_id}, {"$set": unleased})

    async def release(self, ids: list[str]) -> None:
        """Hands entries back at once after a failed publish, so the next pass retries them."""

        async def unlease(session: AsyncClientSession) -> None:
            await self._collection.update_many(
                {"_id": {"$in": ids}}, {"$set": {"leaseUntil": None}}, session=session
            )

        await multi_document_write(self._collection, unlease)

    async def pending_keys(self, topic: Topic, keys: list[str]) -> set[str]:
        """Which of ``keys`` still have an event on ``topic`` waiting to be published."""
        wanted = set(keys)
        entries = self._collection.find(
            {"messages": {"$elemMatch": {"topic": topic.value, "key": {"$in": keys}}}},
            {"messages.topic": 1, "messages.key": 1},
        )
        return {
            message["key"]
            async for entry in entries
            for message in entry["messages"]
            if message["topic"] == topic.value and message["key"] in wanted
        }

    async def pending_count(self) -> int:
        """Events still owed (not entries)."""
        entries = self._collection.find({}, {"messages.id": 1})
        return sum([len(entry["messages"]) async for entry in entries])

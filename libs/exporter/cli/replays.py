"""The record of dead letters replayed, in MongoDB's ``dlq_replays`` collection.

A replayed record is a new record on its source topic, at a new offset: consumers whose
idempotency rests on the event id (``export.requested``, grants, things and entities by
version) would shrug off a second copy, but the ingestor keys stored readings by the source
partition and offset, so a second replay of a measurement would be stored twice. Hence a
replay is claimed here first, by the letter's topic, partition and offset (a unique ``_id``):
only the claim's winner publishes, then marks it ``published``. A claim whose publish failed or
whose publisher died before marking it stays ``publishing``: whether it went out is unknown
(a timed-out send may have landed), so the command refuses it until the operator checks the
source topic (the replay carries ``x-replay-of``) and replays with ``--force``.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from exporter.adapters.mongo.client import Document
from exporter.contracts.base import utcnow

REPLAYS = "dlq_replays"
PUBLISHING, PUBLISHED = "publishing", "published"


def letter_id(dead_letter_topic: str, partition: int, offset: int) -> str:
    """The letter's address; also the ``x-replay-of`` header of its replay."""
    return f"{dead_letter_topic}/{partition}/{offset}"


class ReplayLog:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[REPLAYS]

    async def claim(self, letter: str, *, force: bool = False) -> Document | None:
        """None when this caller may publish the letter now; else the earlier replay's record.
        ``force`` takes over a claim left ``publishing``, never a ``published`` one."""
        try:
            await self._collection.insert_one({"_id": letter, "state": PUBLISHING, "claimedAt": utcnow()})
            return None
        except DuplicateKeyError:
            pass
        if force:
            taken = await self._collection.update_one(
                {"_id": letter, "state": PUBLISHING}, {"$set": {"claimedAt": utcnow()}}
            )
            if taken.modified_count == 1:
                return None
        return await self._collection.find_one({"_id": letter})

    async def published(self, letter: str, topic: str, partition: int, offset: int) -> None:
        where = {"topic": topic, "partition": partition, "offset": offset}
        await self._collection.update_one(
            {"_id": letter}, {"$set": {"state": PUBLISHED, "publishedAt": utcnow(), "to": where}}
        )

    async def states(self, letters: list[str]) -> dict[str, Any]:
        cursor = self._collection.find({"_id": {"$in": letters}})
        return {document["_id"]: document async for document in cursor}

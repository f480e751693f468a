"""Numeric identities per tenant for what we name by strings: jobs, requests, users.

Seed 004 (DataExportHistory) names its objects by numbers. A number is given on first sight
(the first time the seed's API shows the object), not at creation: the scheduler's batches and
the group commit stay as they are (no counter written in their transactions, where a per-tenant
counter would make every concurrent creation of a tenant conflict), and jobs created before
the seed's API existed get numbers too. One counter increment numbers every unseen object of a
read at once; a number once given never changes (its document is keyed by the object, and a
unique index keeps a number to one object). Two first sights at once may leave a gap, never a
second number.
"""

from __future__ import annotations

import contextlib
from typing import Literal

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from exporter.adapters.mongo.client import NUMBERS, Document

Kind = Literal["job", "request", "user"]
SEPARATOR = "\x1f"  # in no id or tenant: both are printable


def _key(kind: Kind, tenant: str, object_id: str) -> str:
    return SEPARATOR.join((kind, tenant, object_id))


class NumericIds:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[NUMBERS]

    async def numbers(self, kind: Kind, tenant: str, ids: list[str]) -> dict[str, int]:
        """The number of each of ``ids``, those seen for the first time numbered now."""
        wanted = list(dict.fromkeys(ids))
        known = await self._known(kind, tenant, wanted)
        unseen = [object_id for object_id in wanted if object_id not in known]
        if not unseen:
            return known
        last = await self._advance(kind, tenant, len(unseen))
        first = last - len(unseen) + 1
        documents = [
            {
                "_id": _key(kind, tenant, object_id),
                "kind": kind,
                "tenant": tenant,
                "id": object_id,
                "number": first + offset,
            }
            for offset, object_id in enumerate(unseen)
        ]
        # A concurrent first sight may have numbered some of them: its numbers stand.
        with contextlib.suppress(BulkWriteError):
            await self._collection.insert_many(documents, ordered=False)
        return known | await self._known(kind, tenant, unseen)

    async def id_of(self, kind: Kind, tenant: str, number: int) -> str | None:
        """The object of ``tenant`` with ``number``; None if no such number was given."""
        document = await self._collection.find_one({"kind": kind, "tenant": tenant, "number": number})
        return None if document is None else str(document["id"])

    async def _known(self, kind: Kind, tenant: str, ids: list[str]) -> dict[str, int]:
        keys = {_key(kind, tenant, object_id): object_id for object_id in ids}
        cursor = self._collection.find({"_id": {"$in": list(keys)}})
        return {keys[document["_id"]]: document["number"] async for document in cursor}

    async def _advance(self, kind: Kind, tenant: str, count: int) -> int:
        """Moves the counter of ``kind`` in ``tenant`` on by ``count``; its new value. The counter
        is created apart, not by an upsert: concurrent upserts of one new document may each answer
        nothing on the embedded store."""
        name = f"{kind}:counter"
        counter = {"_id": SEPARATOR.join((name, tenant)), "kind": name, "tenant": tenant}
        document = await self._increment(counter, count)
        if document is None:
            with contextlib.suppress(DuplicateKeyError):  # a concurrent first one created it
                await self._collection.insert_one(counter | {"next": 0})
            document = await self._increment(counter, count)
        if document is None:
            raise RuntimeError(f"the {kind} counter of tenant {tenant!r} could not be moved on")
        return int(document["next"])

    async def _increment(self, counter: Document, count: int) -> Document | None:
        return await self._collection.find_one_and_update(
            {"_id": counter["_id"]}, {"$inc": {"next": count}}, return_document=ReturnDocument.AFTER
        )

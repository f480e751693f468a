"""The store side of compaction: which segments are live, and one merge (in the caller's transaction).

Every find here names only the fields of one index (``INDEXES[MEASUREMENTS]``): given any
other field, the embedded store reads the whole collection. The rest is filtered here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import MEASUREMENTS, RETIRED_INDEX, Document
from exporter.adapters.mongo.segments import Segment, Series, Tags, to_document

# What finding candidates needs of a segment: not its readings.
META = dict.fromkeys(
    (*Series._fields, *Tags._fields, "from", "to", "count", "arrived", "lastArrived", "source", "retiredAt"),
    1,
)


class Lost(Exception):
    """Another compactor retired one of the segments first: this merge is not needed."""


class CompactionStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[MEASUREMENTS]

    async def arrived(self, since: datetime, until: datetime) -> list[Document]:
        """Live segments whose last reading arrived in ``[since, until)``, without their readings.

        Retired ones are dropped here: the index holds no ``retiredAt``, so retiring a segment
        does not rewrite its entry.
        """
        query = {"lastArrived": {"$gte": since, "$lt": until}}
        found = await self._collection.find(query, META).to_list(None)
        return [document for document in found if "retiredAt" not in document]

    async def small(self, series: Series, target: int) -> list[Document]:
        """Live segments of ``series``'s tenant, publisher and name with fewer than ``target``
        readings, of every bucket (the caller keeps those of its channel, subtopic and group).

        Not by time: the segments of a day that are no longer small are most of it, and a
        merge reads none of them.
        """
        query = {
            "tenant": series.tenant,
            "publisher": series.publisher,
            "name": series.name,
            "retiredAt": None,
            "count": {"$lt": target},
        }
        return await self._collection.find(query).to_list(None)

    async def replace(
        self, originals: Sequence[str], merged: Sequence[Segment], now: datetime, session: AsyncClientSession
    ) -> None:
        """Inserts ``merged`` and retires ``originals`` (``retiredBy`` the first merged id), in
        ``session``'s transaction; raises ``Lost`` when one of them was already retired.

        The retiring write names only live ones and must change them all: of two compactors
        racing, the later commit conflicts, runs again, finds fewer and gives up. (The store finds
        them by ``_id`` and checks ``retiredAt`` on each: no collection scan.)
        """
        documents = [to_document(segment) for segment in merged]
        retire = {"$set": {"retiredBy": merged[0].id, "retiredAt": now}}
        live = {"_id": {"$in": list(originals)}, "retiredAt": None}

        retired = await self._collection.update_many(live, retire, session=session)
        if retired.modified_count != len(originals):
            raise Lost(f"segments of merge {merged[0].id} are gone or retired")
        await self._collection.insert_many(documents, ordered=False, session=session)

    async def sweep(self, before: datetime) -> int:
        """Deletes segments retired before ``before``; returns how many."""
        result = await self._collection.delete_many({"retiredAt": {"$lt": before}}, hint=RETIRED_INDEX)
        return result.deleted_count

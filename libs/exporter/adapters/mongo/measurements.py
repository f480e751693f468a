"""The measurements collection: what the ingestor writes and the renderer reads by series and time."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import polars as pl
from pymongo import ASCENDING, InsertOne
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.bulk import BulkOutcome, bulk_write
from exporter.adapters.mongo.client import MEASUREMENTS, Document
from exporter.contracts.base import utcnow
from exporter.contracts.ingest import Measurement

# The stored fields, in the order the renderer sees them as columns.
FIELDS = ("publisher", "channel", "subtopic", "name", "unit", "time", "value", "created")


def measurement_id(measurement: Measurement) -> str:
    """Deterministic, so a replayed record lands on the same document instead of a new one.

    A series (tenant, channel, subtopic, publisher, name) has one value per millisecond. Each
    name is length-prefixed, so no two different series can spell the same identity.
    """
    m = measurement
    identity = (
        f"{len(m.tenant)}:{m.tenant}{len(m.channel)}:{m.channel}{len(m.subtopic)}:{m.subtopic}"
        f"{len(m.publisher)}:{m.publisher}{len(m.name)}:{m.name}{m.time_ms}"
    )
    return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()


def measurement_document(measurement: Measurement, created: datetime) -> Document:
    m = measurement
    return {
        "_id": measurement_id(m),
        "tenant": m.tenant,
        "channel": m.channel,
        "subtopic": m.subtopic,
        "publisher": m.publisher,
        "protocol": m.protocol,
        "name": m.name,
        "unit": m.unit,
        "time": datetime.fromtimestamp(m.time_ms / 1000, UTC),
        "value": m.value,
        "kind": m.kind,
        "created": created,
    }


class MeasurementRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[MEASUREMENTS]

    async def add_many(self, measurements: Sequence[Measurement]) -> BulkOutcome:
        """Stores new measurements in one unordered bulk write; stored ones come back as duplicates.

        The first write of a measurement wins: a replay, or a second value for the same series
        and millisecond, changes nothing.
        """
        created = utcnow()
        return await bulk_write(
            self._collection, [InsertOne(measurement_document(m, created)) for m in measurements]
        )

    async def frames(
        self,
        tenant: str,
        publisher: str,
        name: str | Sequence[str],
        start: datetime | None,
        end: datetime | None,
        batch_size: int,
        channel: str | None = None,
        subtopic: str | None = None,
    ) -> AsyncIterator[pl.DataFrame]:
        """One series in time order, ``[start, end)``, as polars frames of ``batch_size`` rows; or,
        given several names, those series of the publisher together (a thing's metrics)."""
        names = name if isinstance(name, str) else {"$in": list(name)}
        query: Document = {"tenant": tenant, "publisher": publisher, "name": names}
        if channel:
            query["channel"] = channel
        if subtopic:
            query["subtopic"] = subtopic
        window: Document = {}
        if start is not None:
            window["$gte"] = start
        if end is not None:
            window["$lt"] = end
        if window:
            query["time"] = window
        projection = {field: 1 for field in FIELDS} | {"_id": 0}
        cursor = self._collection.find(query, projection).sort("time", ASCENDING).batch_size(batch_size)
        rows: list[Document] = []
        async for document in cursor:
            rows.append(document)
            if len(rows) >= batch_size:
                yield _frame(rows)
                rows = []
        if rows:
            yield _frame(rows)


def _frame(rows: list[Document]) -> pl.DataFrame:
    columns = {field: [row.get(field) for row in rows] for field in FIELDS}
    kinds = {type(v) for v in columns["value"] if v is not None}
    if len(kinds) > 1 and not kinds <= {int, float}:
        # A series that changed kind (numbers, then text) is exported as text, not dropped.
        columns["value"] = [None if v is None else str(v) for v in columns["value"]]
    return pl.DataFrame(columns, strict=False)

"""The measurements collection: what the ingestor writes and the renderer reads by series and time."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import polars as pl
from pymongo import ASCENDING, InsertOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from exporter.adapters.mongo.client import MEASUREMENTS, Document
from exporter.contracts.base import utcnow
from exporter.contracts.events import MeasurementRecord

DUPLICATE_KEY = 11000

# The stored fields, in the order the renderer sees them as columns.
FIELDS = ("publisher", "channel", "subtopic", "name", "unit", "time", "value", "created")


def measurement_id(tenant: str, record: MeasurementRecord) -> str:
    """Deterministic, so a replayed record lands on the same document instead of a new one."""
    identity = "\x1f".join(
        (tenant, record.channel, record.subtopic, record.publisher, record.name, repr(record.time))
    )
    return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()


def measurement_document(tenant: str, record: MeasurementRecord, created: datetime) -> Document:
    value = next(
        (
            v
            for v in (record.value, record.string_value, record.bool_value, record.data_value, record.sum)
            if v is not None
        ),
        None,
    )
    return {
        "_id": measurement_id(tenant, record),
        "tenant": tenant,
        "channel": record.channel,
        "subtopic": record.subtopic,
        "publisher": record.publisher,
        "protocol": record.protocol,
        "name": record.name,
        "unit": record.unit,
        "time": datetime.fromtimestamp(record.time, UTC),
        "value": value,
        "created": created,
    }


class MeasurementRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[MEASUREMENTS]

    async def add_many(self, tenant: str, records: Sequence[MeasurementRecord]) -> int:
        """Stores new records, skips ones already stored; returns how many were new."""
        created = utcnow()
        operations = [InsertOne(measurement_document(tenant, record, created)) for record in records]
        try:
            result = await self._collection.bulk_write(operations, ordered=False)
        except BulkWriteError as error:
            others = [e for e in error.details["writeErrors"] if e["code"] != DUPLICATE_KEY]
            if others:
                raise
            return int(error.details["nInserted"])
        return result.inserted_count

    async def frames(
        self,
        tenant: str,
        publisher: str,
        name: str,
        start: datetime | None,
        end: datetime | None,
        batch_size: int,
        channel: str | None = None,
        subtopic: str | None = None,
    ) -> AsyncIterator[pl.DataFrame]:
        """One series in time order, ``[start, end)``, as polars frames of ``batch_size`` rows."""
        query: Document = {"tenant": tenant, "publisher": publisher, "name": name}
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

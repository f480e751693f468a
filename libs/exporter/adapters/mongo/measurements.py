"""The measurements collection: what the ingestor writes and the renderer reads by series and time."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import polars as pl
from pymongo import InsertOne
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.bulk import BulkOutcome, bulk_write
from exporter.adapters.mongo.client import MEASUREMENTS, Document
from exporter.adapters.mongo.segments import Segment, segments_of, to_document
from exporter.adapters.mongo.series_reader import By, ReadStats, SeriesRead, SeriesReader
from exporter.contracts.base import utcnow
from exporter.contracts.ingest import Measurement


class MeasurementRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[MEASUREMENTS]

    async def add(self, segments: Sequence[Segment]) -> BulkOutcome:
        """Inserts ``segments`` in one unordered bulk write; stored ids come back as duplicates."""
        return await bulk_write(self._collection, [InsertOne(to_document(segment)) for segment in segments])

    async def add_many(self, measurements: Sequence[Measurement], arrived: datetime | None = None) -> int:
        """Stores ``measurements`` as one flush that no replay will repeat (tests, benchmarks,
        seeding); returns the readings stored."""
        arrived_ms = int((arrived or utcnow()).timestamp() * 1000)
        partition = -1 - secrets.randbelow(2**31)  # not a Kafka partition: ids of their own
        segments = segments_of(measurements, range(len(measurements)), partition, arrived_ms)
        await self.add(segments)
        return sum(segment.count for segment in segments)

    def frames(
        self,
        tenant: str,
        publisher: str,
        name: str | Sequence[str],
        start: datetime | None,
        end: datetime | None,
        batch_size: int,
        channel: str | None = None,
        subtopic: str | None = None,
        by: By = "time",
        stats: ReadStats | None = None,
    ) -> AsyncIterator[pl.DataFrame]:
        """One series in time order, readings measured (``by="time"``) or stored
        (``by="arrival"``) in ``[start, end)``, as polars frames of at most ``batch_size`` rows;
        or, given several names, those series of the publisher together (a thing's metrics).
        See ``series_reader``; ``stats`` records what the read held."""
        names = (name,) if isinstance(name, str) else tuple(name)
        read = SeriesRead(tenant, publisher, names, start, end, by, channel, subtopic)
        return SeriesReader(self._collection, read, stats).frames(batch_size)

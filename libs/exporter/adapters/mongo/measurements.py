"""The measurements collection: what the ingestor writes and the renderer reads by series and time."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
from pymongo import InsertOne
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.bulk import bulk_write
from exporter.adapters.mongo.client import MEASUREMENTS, Document
from exporter.adapters.mongo.ingested import (
    PIECE_FIELDS,
    PieceKey,
    outside,
    piece_of,
    segments_of,
    stored_piece,
)
from exporter.adapters.mongo.segments import Segment, to_document
from exporter.adapters.mongo.series_reader import By, ReadStats, SeriesRead, SeriesReader
from exporter.contracts.base import utcnow
from exporter.contracts.ingest import Measurement


@dataclass(slots=True)
class Added:
    """What ``MeasurementRepository.add`` did."""

    readings: int = 0  # newly stored
    segments: int = 0  # documents inserted
    replayed: int = 0  # found stored already
    # Segments the store refused for what they are, with its words.
    refused: list[tuple[Segment, str]] = field(default_factory=list)


class MeasurementRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[MEASUREMENTS]

    async def add(self, segments: Sequence[Segment]) -> Added:
        """Inserts ingested ``segments`` so that a replay adds nothing, whatever its flush
        boundaries: readings within the source span of a stored segment of their piece are left
        out first; a segment whose id is stored all the same (another consumer, a retry) leaves
        out the stored one's span, and so on until nothing clashes. A stored segment that a
        compaction retired still counts as stored. Segments that name no Kafka positions (seeded
        by a test or a benchmark) are inserted as they are.
        """
        ingested = [s for s in segments if s.source is not None and s.positions is not None]
        stored = await self._stored_spans(ingested)
        pending = [rest for s in ingested if (rest := outside(s, stored.get(piece_of(s), [])))]
        added = Added(replayed=sum(s.count for s in ingested) - sum(s.count for s in pending))
        pending += [s for s in segments if s.source is None or s.positions is None]
        while pending:
            outcome = await bulk_write(self._collection, [InsertOne(to_document(s)) for s in pending])
            skipped = {*outcome.duplicates, *outcome.failures}
            added.readings += sum(s.count for i, s in enumerate(pending) if i not in skipped)
            added.segments += len(pending) - len(skipped)
            added.refused += [(pending[i], reason) for i, reason in outcome.failures.items()]
            duplicates = [pending[i] for i in outcome.duplicates]
            clashes = [s for s in duplicates if s.positions is not None]
            added.replayed += sum(s.count for s in duplicates if s.positions is None)
            spans = await self._spans_of([s.id for s in clashes]) if clashes else {}
            pending = []
            for segment in clashes:
                # Gone since the clash (cleaned up after a compaction): insert it again.
                rest = outside(segment, [spans[segment.id]]) if segment.id in spans else segment
                if rest is not None and rest.id != segment.id:
                    pending.append(rest)
                added.replayed += segment.count - (rest.count if rest is not None else 0)
        return added

    async def _stored_spans(self, segments: Sequence[Segment]) -> dict[PieceKey, list[tuple[int, int]]]:
        """Per piece, the source spans of stored segments that overlap ``segments`` (one indexed
        query per partition, all at once; none found but on a replay)."""
        bounds: dict[int, tuple[int, int]] = {}
        for segment in segments:
            assert segment.source is not None
            partition, first, last = segment.source
            low, high = bounds.get(partition, (first, last))
            bounds[partition] = (min(low, first), max(high, last))
        # The store takes the index for these two conditions (given a third, it scanned).
        found = await asyncio.gather(
            *(
                self._collection.find(
                    {"source.partition": partition, "source.last": {"$gte": low}}, PIECE_FIELDS
                ).to_list()
                for partition, (low, _) in bounds.items()
            )
        )
        spans: dict[PieceKey, list[tuple[int, int]]] = {}
        for (_, high), documents in zip(bounds.values(), found, strict=True):
            for document in documents:
                first, last = document["source"]["first"], document["source"]["last"]
                if first <= high:
                    spans.setdefault(stored_piece(document), []).append((first, last))
        return spans

    async def _spans_of(self, ids: list[str]) -> dict[str, tuple[int, int]]:
        """The source span of each stored segment of ``ids`` (all positions when it names none)."""
        found = self._collection.find({"_id": {"$in": ids}}, {"source": 1})
        return {
            document["_id"]: (document["source"]["first"], document["source"]["last"])
            if "source" in document
            else (0, 2**62)
            async for document in found
        }

    async def add_many(self, measurements: Sequence[Measurement], arrived: datetime | None = None) -> int:
        """Stores ``measurements`` as one flush that no replay will repeat (tests, benchmarks,
        seeding); returns the readings stored."""
        arrived_ms = int((arrived or utcnow()).timestamp() * 1000)
        partition = -1 - secrets.randbelow(2**31)  # not a Kafka partition: ids of their own
        segments = segments_of(measurements, range(len(measurements)), partition, arrived_ms)
        return (await self.add(segments)).readings

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

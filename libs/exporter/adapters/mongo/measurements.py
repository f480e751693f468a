"""The measurements collection: what the ingestor writes and the renderer reads by series and time."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
from bson.codec_options import CodecOptions
from pymongo import ASCENDING, InsertOne
from pymongo.asynchronous.cursor import AsyncCursor
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
from exporter.adapters.mongo.segments import FIELDS, Segment, to_document
from exporter.contracts.base import utcnow
from exporter.contracts.ingest import Measurement

TIME_FIELDS = ("time", "created")
# Times are read naive (UTC) and marked UTC per column.
READ_OPTIONS: CodecOptions[Document] = CodecOptions(tz_aware=False)
# Batches fetched ahead of the one being rendered: enough to keep the store busy, memory bounded.
READ_AHEAD_BATCHES = 2
READ_AHEAD_TASK = "measurements read-ahead"


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
        compaction retired still counts as stored.
        """
        stored = await self._stored_spans(segments)
        pending = [rest for s in segments if (rest := outside(s, stored.get(piece_of(s), [])))]
        added = Added(replayed=sum(s.count for s in segments) - sum(s.count for s in pending))
        while pending:
            outcome = await bulk_write(self._collection, [InsertOne(to_document(s)) for s in pending])
            skipped = {*outcome.duplicates, *outcome.failures}
            added.readings += sum(s.count for i, s in enumerate(pending) if i not in skipped)
            added.segments += len(pending) - len(skipped)
            added.refused += [(pending[i], reason) for i, reason in outcome.failures.items()]
            clashes = [pending[i] for i in outcome.duplicates]
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
    ) -> AsyncIterator[pl.DataFrame]:
        """One series in time order, ``[start, end)``, as polars frames of at most ``batch_size`` rows;
        or, given several names, those series of the publisher together (a thing's metrics).

        The store is the bottleneck of an export, so it is kept busy: the next batches are
        fetched while the caller works on this one. Each query is the series index's own shape
        (device, one metric, time range): given channel and subtopic too, several names at once
        or an index hint, the embedded store reads the whole collection. So several names are
        one query each, merged here in time order, and channel and subtopic are filtered here (a
        device rarely sends one metric on several channels). Documents come whole (projecting
        fields costs that store more than sending them), a batch at a time (no await per
        document), with naive times made UTC per column (decoding aware datetimes costs more
        than the rest).
        """
        query: Document = {"tenant": tenant, "publisher": publisher}
        window: Document = {}
        if start is not None:
            window["$gte"] = start
        if end is not None:
            window["$lt"] = end
        if window:
            query["time"] = window
        wanted = {field: value for field, value in (("channel", channel), ("subtopic", subtopic)) if value}
        if isinstance(name, str):
            return self._series(query | {"name": name}, wanted, batch_size)
        return _merged([self._series(query | {"name": one}, wanted, batch_size) for one in name], batch_size)

    async def _series(
        self, query: Document, wanted: dict[str, str], batch_size: int
    ) -> AsyncGenerator[pl.DataFrame]:
        collection = self._collection.with_options(codec_options=READ_OPTIONS)
        cursor = collection.find(query).sort("time", ASCENDING).batch_size(batch_size)
        batches: asyncio.Queue[list[Document] | Exception | None] = asyncio.Queue(READ_AHEAD_BATCHES)
        reader = asyncio.create_task(_read_ahead(cursor, batch_size, batches), name=READ_AHEAD_TASK)
        try:
            while (batch := await batches.get()) is not None:
                if isinstance(batch, Exception):
                    raise batch
                frame = _frame(batch).filter(**wanted) if wanted else _frame(batch)
                if frame.height:
                    yield frame
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await cursor.close()


async def _merged(
    series: list[AsyncGenerator[pl.DataFrame]], batch_size: int
) -> AsyncGenerator[pl.DataFrame]:
    """Time-ordered frames of several series as one time-ordered stream of frames.

    Rows up to the earliest of the series' latest held times can go: no series still to be
    read has anything before it. The series that held it is read next.
    """
    held: dict[int, pl.DataFrame] = {}
    live = dict(enumerate(series))
    try:
        while live or held:
            for index in [index for index in live if index not in held]:
                frame = await anext(live[index], None)
                if frame is None:
                    del live[index]
                else:
                    held[index] = frame
            ready = [frame for frame in held.values() if frame.height]
            if not ready:
                return
            bound = min((held[index]["time"][-1] for index in live), default=None)
            out = pl.concat(ready, how="vertical_relaxed")
            if bound is not None:
                out = out.filter(pl.col("time") <= bound)
                held = {
                    i: rest
                    for i, frame in held.items()
                    if (rest := frame.filter(pl.col("time") > bound)).height
                }
            else:
                held = {}
            for piece in out.sort("time", maintain_order=True).iter_slices(batch_size):
                yield piece
    finally:
        for stream in series:
            await stream.aclose()


async def _read_ahead(
    cursor: AsyncCursor[Document], batch_size: int, batches: asyncio.Queue[list[Document] | Exception | None]
) -> None:
    """Fills ``batches`` with the cursor's batches, then ``None``; a failure is queued for the reader."""
    try:
        while batch := await cursor.to_list(batch_size):
            await batches.put(batch)
    except Exception as error:
        await batches.put(error)
    else:
        await batches.put(None)


def _frame(rows: list[Document]) -> pl.DataFrame:
    columns = {field: [row.get(field) for row in rows] for field in FIELDS}
    kinds = {type(v) for v in columns["value"] if v is not None}
    if len(kinds) > 1 and not kinds <= {int, float}:
        # A series that changed kind (numbers, then text) is exported as text, not dropped.
        columns["value"] = [None if v is None else str(v) for v in columns["value"]]
    naive_times = dict.fromkeys(TIME_FIELDS, pl.Datetime("us"))
    frame = pl.DataFrame(columns, schema_overrides=naive_times, strict=False)
    return frame.with_columns(pl.col(TIME_FIELDS).dt.replace_time_zone("UTC"))

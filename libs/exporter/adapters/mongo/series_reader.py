"""Reading series back from their segments: plan, fetch ahead, decode into columns, stream in time order.

A read first asks the store for the plan (which segments, where they start, how many readings; no
packed columns), then fetches the bodies by ``_id`` in ``from`` order, a chunk at a time, while
the caller works on the previous chunk. Rows before the next unfetched segment's ``from`` can go:
no segment still to come holds anything earlier. So memory holds the read-ahead chunks and the
segments that overlap that frontier, never the export.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

import numpy as np
import polars as pl
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.segments import (
    Segment,
    earliest_start,
    first_arrived,
    frame_of,
    from_document,
)

# Chunks fetched ahead of the one being rendered: enough to keep the store busy, memory bounded.
READ_AHEAD_CHUNKS = 2
# Readings a fetch asks for at least (a chunk of segments): fewer, larger steps cost less per
# reading (each step is a query and a few dozen polars calls); a few MB each.
FETCH_READINGS = 100_000
QUERIES_IN_FLIGHT = 2
READ_AHEAD_TASK = "measurements read-ahead"
QUERY_TASK = "measurements read-ahead query"
PLAN_FIELDS = ("channel", "subtopic", "from", "to", "arrived", "lastArrived", "count", "retiredBy")
By = Literal["time", "arrival"]


@dataclass(frozen=True, slots=True)
class SeriesRead:
    """What to read: a publisher's series by name (several: a thing's metrics, merged in time
    order), optionally one channel and subtopic, readings measured (``time``) or stored
    (``arrival``) in ``[start, end)``; ``None`` is an open end."""

    tenant: str
    publisher: str
    names: tuple[str, ...]
    start: datetime | None = None
    end: datetime | None = None
    by: By = "time"
    channel: str | None = None
    subtopic: str | None = None

    def plan_query(self, name: str) -> Document:
        """The index's own shape (tenant, publisher, name, then ``from`` or ``arrived``): given
        channel and subtopic too, the embedded store reads the whole collection, so those are
        filtered on the plan."""
        first, last = ("from", "to") if self.by == "time" else ("arrived", "lastArrived")
        query: Document = {"tenant": self.tenant, "publisher": self.publisher, "name": name}
        bounds: Document = {}
        if self.start is not None:
            bounds["$gte"] = earliest_start(self.start)
            query[last] = {"$gte": self.start}
        if self.end is not None:
            bounds["$lt"] = self.end
        if bounds:
            query[first] = bounds
        return query

    def wants(self, document: Document) -> bool:
        return all(
            wanted is None or document[field] == wanted
            for field, wanted in (("channel", self.channel), ("subtopic", self.subtopic))
        )

    @property
    def column(self) -> str:
        """The frame column the window applies to."""
        return "time" if self.by == "time" else "created"


class SegmentsGone(PyMongoError):
    """Planned segments were deleted before they were fetched: retired ones, past their retention,
    whose merge came after the plan. Retryable: a new plan reads the merge."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(f"segments deleted during the read: {', '.join(ids)}", ["RetryableError"])


class Planned(NamedTuple):
    """A segment to read: its id, first and last reading time, first and last arrival (ms)."""

    id: str
    start_ms: int
    end_ms: int
    arrived_ms: int
    last_arrived_ms: int
    readings: int


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def plan_of(read: SeriesRead, documents: Sequence[Document]) -> list[Planned]:
    """The segments to fetch, in ``from`` order.

    A compaction inserts its merge and marks the originals ``retiredBy`` it in one transaction,
    and deletes them only later: a retired segment is skipped when its merge is in the plan, and
    read otherwise (its readings are still there, and the first-arrived rule gives the same rows
    whichever copies are read).
    """
    ids = {document["_id"] for document in documents}
    plan = [
        Planned(
            document["_id"],
            _ms(document["from"]),
            _ms(document["to"]),
            _ms(document["arrived"]),
            _ms(document["lastArrived"]),
            document["count"],
        )
        for document in documents
        if read.wants(document) and document.get("retiredBy") not in ids
    ]
    return sorted(plan, key=lambda planned: (planned.start_ms, planned.id))


def chunks_of(plan: Sequence[Planned], readings: int) -> list[list[Planned]]:
    """``plan`` cut, in order, into fetches of about ``readings`` readings (at least a segment)."""
    chunks: list[list[Planned]] = []
    size = readings
    for planned in plan:
        if size >= readings:
            chunks.append([])
            size = 0
        chunks[-1].append(planned)
        size += planned.readings
    return chunks


@dataclass(slots=True)
class ReadStats:
    """What a read held at most between fetches besides its read-ahead: rows past the frontier
    (the next unfetched segment's start), and the fetched segments that reach past it (for
    tests and benchmarks)."""

    chunks: int = 0
    held_rows: int = 0
    held_segments: int = 0

    def hold(self, rows: int, segments: int) -> None:
        self.chunks += 1
        self.held_rows = max(self.held_rows, rows)
        self.held_segments = max(self.held_segments, segments)


class SeriesReader:
    """One read of ``SeriesRead`` from the segments collection, as time-ordered frames."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        read: SeriesRead,
        stats: ReadStats | None = None,
        fetch_readings: int = FETCH_READINGS,
    ) -> None:
        self._collection = collection
        self._read = read
        self._stats = stats or ReadStats()
        self._fetch_readings = fetch_readings

    async def plan(self) -> list[Planned]:
        """One query per name (several names at once make the embedded store read everything)."""
        order = "from" if self._read.by == "time" else "arrived"
        documents: list[Document] = []
        for name in self._read.names:
            cursor = self._collection.find(self._read.plan_query(name), PLAN_FIELDS).sort(order, ASCENDING)
            documents += await cursor.to_list(None)
        return plan_of(self._read, documents)

    async def frames(self, batch_size: int) -> AsyncGenerator[pl.DataFrame]:
        """Frames of at most ``batch_size`` rows, columns ``FIELDS``, in time order, one reading
        per series and millisecond (the first stored)."""
        chunks = chunks_of(await self.plan(), max(batch_size, self._fetch_readings))
        if not chunks:
            return
        fetched: asyncio.Queue[list[Segment] | Exception | None] = asyncio.Queue(READ_AHEAD_CHUNKS)
        reader = asyncio.create_task(self._fetch(chunks, fetched), name=READ_AHEAD_TASK)
        held: pl.DataFrame | None = None
        reaching: list[Planned] = []  # fetched segments that may reach past the frontier
        try:
            for chunk, following in zip(chunks, [*chunks[1:], None], strict=True):
                segments = await fetched.get()
                if isinstance(segments, Exception):
                    raise segments
                assert segments is not None
                frame = self._in_window(chunk, frame_of(segments))
                if held is not None and held.height:
                    frame = pl.concat([held, frame], how="vertical_relaxed")
                held = _ordered(frame)
                frontier = _LAST if following is None else following[0].start_ms
                cut = _before(held, frontier)
                for piece in held[:cut].drop("rank").iter_slices(batch_size):
                    yield piece
                held = held[cut:]
                reaching = [planned for planned in [*reaching, *chunk] if planned.end_ms >= frontier]
                self._stats.hold(held.height, len(reaching))
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    def _in_window(self, chunk: list[Planned], frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` without the readings outside the window (only edge segments have any)."""
        read = self._read
        if read.by == "time":
            first, last = min(p.start_ms for p in chunk), max(p.end_ms for p in chunk)
        else:
            first, last = min(p.arrived_ms for p in chunk), max(p.last_arrived_ms for p in chunk)
        column = pl.col(read.column)
        if read.start is not None and first < _ms(read.start):
            frame = frame.filter(column >= read.start)
        if read.end is not None and last >= _ms(read.end):
            frame = frame.filter(column < read.end)
        return frame

    async def _fetch(
        self, chunks: list[list[Planned]], fetched: asyncio.Queue[list[Segment] | Exception | None]
    ) -> None:
        """Fills ``fetched`` with each chunk's segments, in plan order, ``QUERIES_IN_FLIGHT``
        queries at a time (one alone leaves the store idle between answers); a failure is
        queued for the reader."""
        pending: deque[asyncio.Task[list[Segment]]] = deque()
        try:
            for chunk in chunks:
                pending.append(asyncio.create_task(self._bodies(chunk), name=QUERY_TASK))
                if len(pending) >= QUERIES_IN_FLIGHT:
                    await fetched.put(await pending.popleft())
            while pending:
                await fetched.put(await pending.popleft())
        except Exception as error:
            await fetched.put(error)
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _bodies(self, chunk: list[Planned]) -> list[Segment]:
        order = {planned.id: index for index, planned in enumerate(chunk)}
        documents = await self._collection.find({"_id": {"$in": list(order)}}).to_list(None)
        if len(documents) < len(chunk):
            raise SegmentsGone(sorted(set(order) - {document["_id"] for document in documents}))
        documents.sort(key=lambda document: order[document["_id"]])
        return [from_document(document) for document in documents]


def _ordered(frame: pl.DataFrame) -> pl.DataFrame:
    """``first_arrived`` where it can change anything: rows not already strictly in time order."""
    times = frame["time"].to_physical().to_numpy()
    if bool((np.diff(times) > 0).all()):
        return frame
    return first_arrived(frame)


_LAST = np.iinfo(np.int64).max // 1000  # a frontier past every time


def _before(frame: pl.DataFrame, start_ms: int) -> int:
    """How many rows of the time-ordered ``frame`` come before ``start_ms``."""
    frontier = np.int64(start_ms) * 1000  # the frame's times are microseconds
    return int(np.searchsorted(frame["time"].to_physical().to_numpy(), frontier, side="left"))

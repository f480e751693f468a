"""Measurements stored as segments: one insert-only document holds many readings of one series.

A segment document::

    _id        deterministic (``segment_id``): a replayed flush hits the same ids
    tenant, channel, subtopic, publisher, name       the series
    unit, protocol, kind                              shared by all its readings
    from, to   first and last reading time (inclusive), always inside one SPAN bucket
    count      how many readings
    arrived, lastArrived    when its earliest and its latest reading were stored
    times      int64 little-endian milliseconds, ascending, each time once
    values     float64 (kind value, sum), uint8 (boolValue) or an array of text
               (stringValue, dataValue)
    arrivals   int64 milliseconds per reading, only where they differ (a compaction's merge)
    source     {partition, first, last}: Kafka positions of the readings an ingest flush took
    retiredBy  set when a compaction merged it into another segment (deleted later)

Numbers are packed, not BSON arrays: the store handles one binary field per document instead of
one element per reading, and the reader turns many segments into columns with a few ``numpy``
calls (no Python object per reading). MongoDB's own time-series collections are not used: they
give the client one document per reading again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import polars as pl
from bson import Binary

from exporter.adapters.mongo.client import Document

# A segment never spans two of these buckets (UTC): a window's query reads no segment that
# starts more than one span before the window, however late its readings came.
SPAN = timedelta(days=1)
SPAN_MS = int(SPAN.total_seconds() * 1000)
# Readings a segment holds at most, and packed bytes: far below the store's 16 MiB document limit.
MAX_READINGS = 50_000
MAX_BYTES = 4 * 1024 * 1024
# The stored fields in the order the renderer sees them as columns.
FIELDS = ("publisher", "channel", "subtopic", "name", "unit", "time", "value", "created")
# Which readings hold numbers, which truth values; the others hold text.
NUMBER_KINDS = frozenset({"value", "sum"})
BOOL_KINDS = frozenset({"boolValue"})
# A reading's place in the ingest topic: (offset << POSITION_BITS) | its index in the record.
POSITION_BITS = 14

Times = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64] | npt.NDArray[np.bool_] | list[str]


class Series(NamedTuple):
    """What a reading belongs to: one value per millisecond per series."""

    tenant: str
    channel: str
    subtopic: str
    publisher: str
    name: str


class Tags(NamedTuple):
    """What every reading of one segment shares besides its series."""

    unit: str
    protocol: str
    kind: str


class Source(NamedTuple):
    """The Kafka positions an ingested segment was built from (see ``position``)."""

    partition: int
    first: int
    last: int


def position(offset: int, index: int) -> int:
    """A reading's place in its partition: the record's offset, then its place in the record."""
    return (offset << POSITION_BITS) | index


@dataclass(frozen=True, slots=True)
class Segment:
    """A segment in memory: ``times`` ascending and unique, the other columns aligned with it."""

    id: str
    series: Series
    tags: Tags
    times: Times
    values: Values
    arrivals: Times
    source: Source | None = None
    # In memory only, for an ingested segment: each reading's ``position``, aligned with ``times``.
    positions: Times | None = None

    @property
    def count(self) -> int:
        return len(self.times)


def _length_prefixed(*parts: object) -> bytes:
    return "".join(f"{len(text)}:{text}" for text in map(str, parts)).encode()


def segment_id(series: Series, tags: Tags, partition: int, first: int) -> str:
    """The id of an ingested segment: its series and tags, and the position of its first reading.

    A replayed batch starts where the last stored flush ended, so each of its segments starts
    at the same reading as the one stored before, and gets the same id.
    """
    return hashlib.blake2b(_length_prefixed(*series, *tags, partition, first), digest_size=16).hexdigest()


def merged_id(ids: Sequence[str]) -> str:
    """The id of a compaction's merge: the same merge of the same segments, the same id."""
    return hashlib.blake2b(_length_prefixed("merged", *sorted(ids)), digest_size=16).hexdigest()


def bucket_of(time_ms: int) -> int:
    """The start of the SPAN bucket holding ``time_ms``."""
    return time_ms - time_ms % SPAN_MS


def earliest_start(start: datetime) -> datetime:
    """The earliest ``from`` of a segment that can hold a reading at or after ``start``."""
    start_ms = int(start.timestamp() * 1000)
    return _datetime(bucket_of(start_ms))


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _packed_values(kind: str, values: Values) -> Binary | list[str]:
    if kind in NUMBER_KINDS:
        return Binary(np.asarray(values, dtype="<f8").tobytes())
    if kind in BOOL_KINDS:
        return Binary(np.asarray(values, dtype=np.bool_).astype("u1").tobytes())
    return list(values)


def cuts(spent: npt.NDArray[np.int64], start: int, end: int) -> list[tuple[int, int]]:
    """Readings ``[start, end)`` cut, in order, into pieces of at most MAX_READINGS readings and
    MAX_BYTES bytes; ``spent`` is the running total of what the readings cost a document."""
    if start >= end:
        return []
    before = int(spent[start - 1]) if start else 0
    if end - start <= MAX_READINGS and int(spent[end - 1]) - before <= MAX_BYTES:
        return [(start, end)]  # the usual: everything fits one segment
    pieces = []
    while start < end:
        before = int(spent[start - 1]) if start else 0
        fits = int(np.searchsorted(spent, before + MAX_BYTES, side="right"))
        stop = max(start + 1, min(end, start + MAX_READINGS, fits))
        pieces.append((start, stop))
        start = stop
    return pieces


def to_document(segment: Segment) -> Document:
    """The stored form of ``segment``."""
    times = segment.times
    arrivals = segment.arrivals
    document: Document = {
        "_id": segment.id,
        **segment.series._asdict(),
        **segment.tags._asdict(),
        "from": _datetime(int(times[0])),
        "to": _datetime(int(times[-1])),
        "count": len(times),
        "arrived": _datetime(int(arrivals.min())),
        "lastArrived": _datetime(int(arrivals.max())),
        "times": Binary(times.astype("<i8", copy=False).tobytes()),
        "values": _packed_values(segment.tags.kind, segment.values),
    }
    if arrivals.min() != arrivals.max():
        document["arrivals"] = Binary(arrivals.astype("<i8", copy=False).tobytes())
    if segment.source is not None:
        document["source"] = segment.source._asdict()
    return document


def _values_of(document: Document, count: int) -> Values:
    kind = document["kind"]
    if kind in NUMBER_KINDS:
        return np.frombuffer(document["values"], dtype="<f8", count=count)
    if kind in BOOL_KINDS:
        return np.frombuffer(document["values"], dtype="u1", count=count).astype(np.bool_)
    return list(document["values"])


def from_document(document: Document) -> Segment:
    """A stored segment back in memory (the arrays are read-only views of the document's bytes)."""
    count = document["count"]
    times = np.frombuffer(document["times"], dtype="<i8", count=count)
    if "arrivals" in document:
        arrivals = np.frombuffer(document["arrivals"], dtype="<i8", count=count)
    else:
        arrived = int(document["arrived"].timestamp() * 1000)
        arrivals = np.full(count, arrived, dtype=np.int64)
    source = document.get("source")
    return Segment(
        id=document["_id"],
        series=Series(*(document[field] for field in Series._fields)),
        tags=Tags(*(document[field] for field in Tags._fields)),
        times=times,
        values=_values_of(document, count),
        arrivals=arrivals,
        source=Source(**source) if source else None,
    )


def rank(segment_id: str) -> int:
    """An integer that orders segments as their ids do (for ties between equal arrivals)."""
    return int(segment_id[:15], 16)


def frame_of(segments: Sequence[Segment]) -> pl.DataFrame:
    """Many segments as one frame, columns ``FIELDS`` plus ``rank``, in the segments' order.

    The numbers of all segments are joined and handed to polars as whole columns; a name the
    segments share (the usual case: one series) is one broadcast value, others repeat by
    gathering from one value per segment.
    """
    if not segments:
        return empty_frame()
    counts = np.fromiter((s.count for s in segments), dtype=np.int64, count=len(segments))
    rows = np.repeat(np.arange(len(segments)), counts)
    ranks = np.fromiter((rank(s.id) for s in segments), dtype=np.int64, count=len(segments))
    names = {
        "publisher": [s.series.publisher for s in segments],
        "channel": [s.series.channel for s in segments],
        "subtopic": [s.series.subtopic for s in segments],
        "name": [s.series.name for s in segments],
        "unit": [s.tags.unit for s in segments],
    }
    times = np.concatenate([s.times for s in segments])
    arrivals = np.concatenate([s.arrivals for s in segments])
    return (
        pl.DataFrame({"rank": ranks[rows]})
        .with_columns(
            *(_repeated(field, values, rows) for field, values in names.items()),
            time=_utc(times),
            value=_value_column(segments),
            created=_utc(arrivals),
        )
        .select(*FIELDS, "rank")
    )


def _repeated(field: str, values: list[str], rows: npt.NDArray[np.int64]) -> pl.Expr | pl.Series:
    if len(set(values)) == 1:
        return pl.lit(values[0], dtype=pl.String).alias(field)
    return pl.Series(field, values, dtype=pl.String)[rows]


def _utc(ms: Times) -> pl.Series:
    return pl.from_epoch(pl.Series(ms, dtype=pl.Int64), time_unit="ms").dt.replace_time_zone("UTC")


def _value_column(segments: Sequence[Segment]) -> pl.Series:
    """Numbers stay numbers and truth values truth values; a series that changed kind (numbers,
    then text) is exported as text rather than dropped."""
    kinds = {s.tags.kind for s in segments}
    if kinds <= NUMBER_KINDS:
        return pl.Series("value", np.concatenate([np.asarray(s.values) for s in segments]), dtype=pl.Float64)
    if kinds <= BOOL_KINDS:
        return pl.Series("value", np.concatenate([np.asarray(s.values) for s in segments]), dtype=pl.Boolean)
    parts = [pl.Series("value", s.values).cast(pl.String) for s in segments]
    return pl.concat(parts)


def empty_frame() -> pl.DataFrame:
    utc = pl.Datetime("us", "UTC")
    schema: dict[str, pl.DataType] = {field: pl.String() for field in FIELDS}
    schema |= {"time": utc, "created": utc, "value": pl.Float64(), "rank": pl.Int64()}
    return pl.DataFrame(schema=schema)


def first_arrived(frame: pl.DataFrame) -> pl.DataFrame:
    """One reading per series and millisecond: the one stored first (then the lower segment rank).

    The rule of the store, applied wherever readings meet: the reader across segments, a
    compaction within what it merges. Keeps the frame sorted by time.
    """
    return frame.sort("time", "created", "rank").unique(
        subset=["publisher", "channel", "subtopic", "name", "time"], keep="first", maintain_order=True
    )

"""Ingested segments: a flush's readings grouped into segments, and what a replay still adds.

The ingest side of the segment layout (``segments``): a flush arrives as columns (a ``READINGS``
frame built without a Python object per reading) and leaves as segments with deterministic ids,
so a replayed flush hits the ids stored before; ``after`` then tells what a replay that went
further than the stored flush still has to add.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.segments import (
    BOOL_KINDS,
    NUMBER_KINDS,
    SPAN_MS,
    Segment,
    Series,
    Source,
    Tags,
    Times,
    Values,
    bucket_of,
    cuts,
    segment_id,
)
from exporter.contracts.ingest import Measurement

# One reading a row: where it came from, its series and tags, its time (ms) and its value (the
# number, 0/1 for a truth value, or the text).
READINGS: dict[str, pl.DataType] = {
    "partition": pl.Int64(),
    "position": pl.Int64(),
    **{field: pl.String() for field in (*Series._fields, *Tags._fields)},
    "time": pl.Int64(),
    "number": pl.Float64(),
    "text": pl.String(),
}
_PIECE = ("partition", *Series._fields, *Tags._fields, "bucket")
# What one reading costs a document besides its text: time and value packed, or an array slot.
_READING_BYTES = 16


def segments_of(
    readings: Sequence[Measurement], positions: Sequence[int], partition: int, arrived_ms: int
) -> list[Segment]:
    """``segments_from`` for readings held as ``Measurement`` tuples (seeding, tests)."""
    return segments_from(readings_frame(readings, positions, partition), arrived_ms)


def readings_frame(readings: Sequence[Measurement], positions: Sequence[int], partition: int) -> pl.DataFrame:
    """``Measurement`` tuples as a ``READINGS`` frame."""
    numeric = [r.kind in NUMBER_KINDS or r.kind in BOOL_KINDS for r in readings]
    columns: dict[str, Sequence[object]] = {
        "partition": [partition] * len(readings),
        "position": list(positions),
        **{field: [getattr(r, field) for r in readings] for field in (*Series._fields, *Tags._fields)},
        "time": [r.time_ms for r in readings],
        "number": [float(r.value) if n else None for r, n in zip(readings, numeric, strict=True)],
        "text": [None if n else str(r.value) for r, n in zip(readings, numeric, strict=True)],
    }
    return pl.DataFrame(columns, schema=READINGS)


def segments_from(readings: pl.DataFrame, arrived_ms: int) -> list[Segment]:
    """One flush's readings (a ``READINGS`` frame) as segments: per partition, series and tags,
    per SPAN bucket, at most MAX_READINGS and MAX_BYTES each.

    Where a series has two readings for one millisecond in a partition, the first there is kept
    (the store's first-arrived rule, within a flush). A piece holds consecutive readings of its
    series and bucket, so a replay that covers more of the partition than the stored flush did
    adds the rest as new pieces and nothing twice. Column operations throughout: Python runs
    once per segment, not per reading.
    """
    frame = readings.sort("partition", "position").with_columns(
        bucket=pl.col("time") - pl.col("time") % SPAN_MS
    )
    pieces = _pieces(frame)
    if pieces.select("partition", *Series._fields, "bucket").n_unique() < pieces.height:
        # A series sent with other tags too: the first of a millisecond, across its pieces.
        frame = frame.filter(pl.struct("partition", *Series._fields, "time").is_first_distinct())
        pieces = _pieces(frame)
    # Each piece's rows in partition order, the pieces one after the other.
    rows, lengths = _first_of_each_time(frame, pieces)
    costs = frame["text"].str.len_bytes().fill_null(0).cast(pl.Int64).to_numpy()[rows] + _READING_BYTES
    spent = np.cumsum(costs)
    ends = np.cumsum(lengths).tolist()
    spans = [
        (piece, start, stop)
        for piece, (end, length) in enumerate(zip(ends, lengths.tolist(), strict=True))
        for start, stop in cuts(spent, end - length, end)
    ]
    # Time order within each cut, with one sort for all of them (none when sent in order).
    times = frame["time"].to_numpy()[rows]
    cut_of = np.repeat(np.arange(len(spans)), [stop - start for _, start, stop in spans])
    if not ((np.diff(times) > 0) | (np.diff(cut_of) != 0)).all():
        rows = rows[np.lexsort((times, cut_of))]
        times = frame["time"].to_numpy()[rows]
    positions = frame["position"].to_numpy()[rows]
    numbers = frame["number"].to_numpy()[rows]
    texts = frame["text"]
    keys = pieces.select(_PIECE).rows()
    segments = []
    for piece, start, end in spans:
        row = keys[piece]
        tags = Tags(*row[6:9])
        values: Values
        if tags.kind in NUMBER_KINDS:
            values = numbers[start:end]
        elif tags.kind in BOOL_KINDS:
            values = numbers[start:end] != 0
        else:
            values = texts.gather(rows[start:end]).to_list()
        segment = _ingested(
            Series(*row[1:6]), tags, row[0], times[start:end], values, positions[start:end], arrived_ms
        )
        segments.append(segment)
    return segments


def _pieces(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per piece: its key and its rows of ``frame``, in partition order."""
    return frame.with_row_index("row").group_by(_PIECE).agg(pl.col("row"))


def _first_of_each_time(
    frame: pl.DataFrame, pieces: pl.DataFrame
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The pieces' rows one piece after the other (partition order within each) and each
    piece's length, keeping of the rows of one time in a piece the first."""
    rows = pieces["row"].explode().to_numpy().astype(np.int64)
    lengths = pieces["row"].list.len().to_numpy().astype(np.int64)
    times = frame["time"].to_numpy()[rows]
    piece = np.repeat(np.arange(len(lengths)), lengths)
    if ((np.diff(times) > 0) | (np.diff(piece) != 0)).all():
        return rows, lengths  # every piece sent in time order: no time twice
    order = np.lexsort((np.arange(len(rows)), times, piece))
    again = (piece[order][1:] == piece[order][:-1]) & (times[order][1:] == times[order][:-1])
    keep = np.ones(len(rows), dtype=np.bool_)
    keep[order[1:][again]] = False
    return rows[keep], np.bincount(piece[keep], minlength=len(lengths)).astype(np.int64)


def _ingested(
    series: Series,
    tags: Tags,
    partition: int,
    times: Times,
    values: Values,
    positions: Times,
    arrived_ms: int,
) -> Segment:
    first, last = int(positions.min()), int(positions.max())
    return Segment(
        id=segment_id(series, tags, partition, first),
        series=series,
        tags=tags,
        times=times,
        values=values,
        arrivals=np.full(len(times), arrived_ms, dtype=np.int64),
        source=Source(partition, first, last),
        positions=positions,
    )


PieceKey = tuple[int, Series, Tags, int]


def piece_of(segment: Segment) -> PieceKey:
    """What an ingested segment's readings share: partition, series, tags and SPAN bucket."""
    assert segment.source is not None
    return segment.source.partition, segment.series, segment.tags, bucket_of(int(segment.times[0]))


def stored_piece(document: Document) -> PieceKey:
    """``piece_of`` a stored ingested segment, from its fields alone (no columns needed)."""
    start_ms = round(document["from"].timestamp() * 1000)
    return (
        document["source"]["partition"],
        Series(*(document[name] for name in Series._fields)),
        Tags(*(document[name] for name in Tags._fields)),
        bucket_of(start_ms),
    )


# The fields ``stored_piece`` reads.
PIECE_FIELDS = {name: 1 for name in (*Series._fields, *Tags._fields, "from", "source")}


def outside(segment: Segment, stored: Sequence[tuple[int, int]]) -> Segment | None:
    """The readings of an ingested ``segment`` whose positions lie in none of the ``stored``
    spans ((first, last) of stored segments of its piece, which hold every reading of the piece
    between), as a segment with the id of its own first reading; None when none are left."""
    assert segment.positions is not None
    assert segment.source is not None
    positions = segment.positions
    keep = np.ones(len(positions), dtype=np.bool_)
    for first, last in stored:
        keep &= (positions < first) | (positions > last)
    if keep.all():
        return segment
    if not keep.any():
        return None
    values: Values
    if isinstance(segment.values, list):
        values = [value for value, kept in zip(segment.values, keep, strict=True) if kept]
    else:
        values = segment.values[keep]
    return _ingested(
        segment.series,
        segment.tags,
        segment.source.partition,
        segment.times[keep],
        values,
        positions[keep],
        int(segment.arrivals[0]),
    )

"""Segments as an ingest flush would store them, for the compaction tests and benchmark."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from exporter.adapters.mongo.segments import Segment, Series, Source, Tags, position, segment_id

SERIES = Series("t1", "ch", "events", "dev-1", "temp")
TAGS = Tags("Cel", "mqtt", "value")
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a SPAN bucket's start
_offsets = itertools.count(1)


def ingested(
    times: Sequence[int],
    values: Sequence[float] | Sequence[str],
    arrived: int,
    series: Series = SERIES,
    tags: Tags = TAGS,
) -> Segment:
    """An ingested segment (one flush, one arrival, a ``source``): ``times`` in ms after ``T0``."""
    first = position(next(_offsets), 0)
    stored = list(map(str, values)) if tags.kind == "stringValue" else np.asarray(values, dtype=np.float64)
    return Segment(
        id=segment_id(series, tags, 0, first),
        series=series,
        tags=tags,
        times=np.asarray(times, dtype=np.int64) + T0,
        values=stored,
        arrivals=np.full(len(times), arrived, dtype=np.int64),
        source=Source(0, first, first + len(times) - 1),
    )

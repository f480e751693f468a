"""The segment layout: what is stored is what comes back, and the first-arrived rule."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
from bson import decode, encode

from exporter.adapters.mongo.segments import (
    SPAN,
    Segment,
    Series,
    Source,
    Tags,
    earliest_start,
    first_arrived,
    frame_of,
    from_document,
    merged_id,
    position,
    segment_id,
    to_document,
)

SERIES = Series("t1", "ch", "events", "dev-1", "temp")
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def segment(
    times: list[int], values: list[float] | list[bool] | list[str], kind: str, arrived: int
) -> Segment:
    tags = Tags("Cel", "mqtt", kind)
    array = np.asarray(times, dtype=np.int64) + T0
    stored: np.ndarray | list[str] = values if kind == "stringValue" else np.asarray(values)  # type: ignore[assignment]
    return Segment(
        id=segment_id(SERIES, tags, 0, position(len(times), 0)),
        series=SERIES,
        tags=tags,
        times=array,
        values=stored,
        arrivals=np.full(len(times), T0 + arrived, dtype=np.int64),
        source=Source(0, position(1, 0), position(3, 2)),
    )


def stored(s: Segment) -> Segment:
    return from_document(decode(encode(to_document(s))))


def test_every_kind_comes_back_as_it_was_stored() -> None:
    for values, kind, dtype in (
        ([1.5, -2.0, 3e300], "value", pl.Float64),
        ([True, False, True], "boolValue", pl.Boolean),
        (["a", "ü", "=1+1"], "stringValue", pl.String),
    ):
        frame = frame_of([stored(segment([0, 1000, 2000], values, kind, 5000))])
        assert frame["value"].dtype == dtype
        assert frame["value"].to_list() == values
        assert frame["time"].to_list()[0] == datetime(2026, 1, 1, tzinfo=UTC)
        assert frame["created"].to_list() == [datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)] * 3
        assert frame["unit"].to_list() == ["Cel"] * 3


def test_a_document_names_its_range_and_source() -> None:
    document = to_document(segment([0, 10, 20], [1.0, 2.0, 3.0], "value", 0))
    assert document["from"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert document["count"] == 3
    assert document["source"] == {"partition": 0, "first": position(1, 0), "last": position(3, 2)}
    assert "arrivals" not in document  # one flush, one arrival: stored once


def test_the_first_arrived_reading_wins_and_ties_go_to_the_lower_rank() -> None:
    early = segment([0, 1000], [1.0, 2.0], "value", arrived=10)
    late = segment([1000, 2000], [20.0, 30.0], "value", arrived=20)
    frame = first_arrived(frame_of([late, early]))
    assert frame["value"].to_list() == [1.0, 2.0, 30.0]
    assert frame["time"].is_sorted()


def test_mixed_kinds_are_exported_as_text() -> None:
    frame = frame_of([segment([0], [1.5], "value", 0), segment([1000], ["on"], "stringValue", 0)])
    assert frame["value"].to_list() == ["1.5", "on"]


def test_ids_are_deterministic_and_distinct() -> None:
    tags = Tags("Cel", "mqtt", "value")
    assert segment_id(SERIES, tags, 0, 7) == segment_id(SERIES, tags, 0, 7)
    assert segment_id(SERIES, tags, 0, 7) != segment_id(SERIES, tags, 1, 7)
    # Length-prefixed: moving a character from one name to the next is another series.
    other = Series("t1", "ch", "events", "dev-1t", "emp")
    assert segment_id(other, tags, 0, 7) != segment_id(SERIES, tags, 0, 7)
    assert merged_id(["b", "a"]) == merged_id(["a", "b"])


def test_a_window_reads_segments_from_one_span_before_it() -> None:
    start = datetime(2026, 1, 2, 15, 30, tzinfo=UTC)
    assert earliest_start(start) == datetime(2026, 1, 2, tzinfo=UTC)
    assert start - earliest_start(start) < SPAN

"""A flush's readings as segments, and what a replay still has to add, without servers."""

from __future__ import annotations

import pytest

from exporter.adapters.mongo import segments as layout
from exporter.adapters.mongo.ingested import outside, piece_of, segments_of
from exporter.adapters.mongo.segments import SPAN_MS, Segment, position
from exporter.contracts.ingest import Measurement

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def reading(time_ms: int, value: float | str = 1.0, name: str = "temp", kind: str = "value") -> Measurement:
    return Measurement("t1", "ch", "", "dev", "", name, "Cel", T0 + time_ms, kind, value)


def flush(readings: list[Measurement], first_offset: int = 0) -> list[Segment]:
    """``readings`` as a flush of one record each, from ``first_offset`` on."""
    positions = [position(first_offset + index, 0) for index in range(len(readings))]
    return segments_of(readings, positions, 0, T0 + 10**6)


def test_a_series_gets_one_segment_in_time_order_keeping_the_first_of_a_millisecond() -> None:
    [segment] = flush([reading(3000, 3.0), reading(1000, 1.0), reading(3000, 30.0), reading(2000, 2.0)])
    assert (segment.times - T0).tolist() == [1000, 2000, 3000]
    assert segment.values.tolist() == [1.0, 2.0, 3.0]  # type: ignore[union-attr]
    assert segment.source is not None
    assert (segment.source.first, segment.source.last) == (position(0, 0), position(3, 0))


def test_late_readings_go_to_the_segment_of_their_day_and_kinds_apart() -> None:
    readings = [
        reading(SPAN_MS + 5),
        reading(-SPAN_MS + 7),  # a day late
        reading(SPAN_MS + 9),
        reading(SPAN_MS + 1, "open", kind="stringValue"),
        reading(3, name="hum"),
    ]
    segments = flush(readings)
    assert sorted(((s.series.name, s.tags.kind), (s.times - T0).tolist()) for s in segments) == [
        (("hum", "value"), [3]),
        (("temp", "stringValue"), [SPAN_MS + 1]),
        (("temp", "value"), [-SPAN_MS + 7]),
        (("temp", "value"), [SPAN_MS + 5, SPAN_MS + 9]),
    ]
    assert len({s.id for s in segments}) == 4


def test_a_piece_is_cut_before_the_reading_or_byte_limit_in_partition_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(layout, "MAX_READINGS", 3)
    segments = flush([reading(10_000 - index * 1000) for index in range(7)])  # arriving newest first
    assert [s.count for s in segments] == [3, 3, 1]
    assert [s.positions.tolist() for s in segments] == [  # type: ignore[union-attr]
        [position(offset, 0) for offset in offsets] for offsets in ([2, 1, 0], [5, 4, 3], [6])
    ]
    monkeypatch.setattr(layout, "MAX_READINGS", 100)
    monkeypatch.setattr(layout, "MAX_BYTES", 100)
    texts = flush([reading(index, "x" * 30, kind="stringValue") for index in range(5)])
    assert [s.count for s in texts] == [2, 2, 1]  # 46 bytes a reading
    assert [text for s in texts for text in s.values] == ["x" * 30] * 5


def test_a_replay_adds_only_what_lies_outside_the_stored_spans() -> None:
    readings = [reading(index * 1000, float(index)) for index in range(10)]
    [stored] = flush(readings[:4])
    [replayed] = flush(readings[:7])
    assert replayed.id == stored.id
    assert stored.source is not None
    span = (stored.source.first, stored.source.last)
    rest = outside(replayed, [span])
    assert rest is not None
    assert (rest.times - T0).tolist() == [4000, 5000, 6000]
    assert rest.id == flush(readings[4:7], first_offset=4)[0].id
    assert piece_of(rest) == piece_of(stored)
    assert outside(flush(readings[:3])[0], [span]) is None  # a shorter replay adds nothing
    [late] = flush(readings[2:9], first_offset=2)  # from inside the stored span, then on
    assert outside(late, [span, (position(5, 0), position(6, 0))]).times.tolist() == [  # type: ignore[union-attr]
        T0 + 4000,
        T0 + 7000,
        T0 + 8000,
    ]


def test_the_first_of_a_millisecond_wins_across_the_tags_of_a_series() -> None:
    segments = flush(
        [reading(5, 1.0), reading(5, "on", kind="stringValue"), reading(6, "off", kind="stringValue")]
    )
    assert sorted((s.tags.kind, (s.times - T0).tolist()) for s in segments) == [
        ("stringValue", [6]),
        ("value", [5]),
    ]

"""A read's plan: which segments, in which order, fetched in which steps (no store needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.series_reader import Planned, SeriesRead, chunks_of, plan_of

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def stored(
    id_: str, second: int, count: int = 10, channel: str = "ch", retired_by: str | None = None
) -> Document:
    document: Document = {
        "_id": id_,
        "channel": channel,
        "subtopic": "events",
        "from": T0 + timedelta(seconds=second),
        "to": T0 + timedelta(seconds=second + count),
        "arrived": T0,
        "lastArrived": T0,
        "count": count,
    }
    if retired_by is not None:
        document["retiredBy"] = retired_by
    return document


def test_segments_are_read_in_from_order_retired_ones_only_without_their_merge() -> None:
    read = SeriesRead("t", "dev", ("temp",))
    documents = [
        stored("c", 20),
        stored("a", 0, retired_by="m"),
        stored("b", 5, retired_by="m"),
        stored("m", 0, count=15),
        stored("d", 30, retired_by="gone"),  # its merge is not planned: read it
    ]
    assert [planned.id for planned in plan_of(read, documents)] == ["m", "c", "d"]
    assert [planned.id for planned in plan_of(read, documents[:3])] == ["a", "b", "c"]


def test_channel_and_subtopic_are_filtered_on_the_plan() -> None:
    documents = [stored("a", 0), stored("b", 1, channel="other")]
    assert [p.id for p in plan_of(SeriesRead("t", "dev", ("temp",), channel="other"), documents)] == ["b"]
    assert plan_of(SeriesRead("t", "dev", ("temp",), subtopic="else"), documents) == []


def test_a_plan_is_fetched_in_steps_of_about_the_readings_asked_at_least_a_segment_each() -> None:
    plan = [Planned(str(i), i, i, 0, 0, readings) for i, readings in enumerate([3, 3, 10, 1, 1, 1])]
    assert [[p.id for p in chunk] for chunk in chunks_of(plan, 5)] == [["0", "1"], ["2"], ["3", "4", "5"]]
    assert chunks_of([], 5) == []


def test_the_query_reads_from_the_start_of_the_windows_day_and_by_arrival_on_arrivals() -> None:
    start, end = T0, T0 + timedelta(hours=1)
    by_time = SeriesRead("t", "dev", ("temp",), start, end).plan_query("temp")
    assert by_time["from"] == {"$gte": datetime(2026, 1, 1, tzinfo=UTC), "$lt": end}
    assert by_time["to"] == {"$gte": start}
    by_arrival = SeriesRead("t", "dev", ("temp",), start, end, "arrival").plan_query("temp")
    assert by_arrival["arrived"] == {"$gte": datetime(2026, 1, 1, tzinfo=UTC), "$lt": end}
    assert by_arrival["lastArrived"] == {"$gte": start}
    assert "from" not in by_arrival
    assert "from" not in SeriesRead("t", "dev", ("temp",)).plan_query("temp")

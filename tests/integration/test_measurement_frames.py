"""The renderer's read path against the real store: segments planned, fetched ahead and decoded
into one series in time order, in bounded frames; windows by measured time and by arrival with
exact edges; the first-arrived reading where segments meet; compaction's retired segments; and
nothing left running when the caller stops early."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import InvalidOperation

from exporter.adapters.errors import is_transient
from exporter.adapters.mongo.client import MEASUREMENTS, connect, database, in_transaction
from exporter.adapters.mongo.measurements import MeasurementRepository
from exporter.adapters.mongo.segments import Segment, Series, Tags, merged_id, segment_id, to_document
from exporter.adapters.mongo.series_reader import (
    QUERY_TASK,
    READ_AHEAD_TASK,
    By,
    ReadStats,
    SegmentsGone,
    SeriesRead,
    SeriesReader,
)
from exporter.contracts.base import utcnow
from exporter.contracts.ingest import Measurement
from exporter.runtime import Runtime

pytestmark = pytest.mark.servers
START = datetime(2026, 3, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
DEVICE = "dev-1"
SERIES = Series("t1", "ch-1", "events.data", DEVICE, "temp")
TAGS = Tags("Cel", "mqtt", "value")
_partitions = itertools.count()


def reading(second: int, value: float | str | bool, **fields: str) -> Measurement:
    base = {
        "tenant": "t1",
        "channel": "ch-1",
        "subtopic": "events.data",
        "publisher": DEVICE,
        "protocol": "mqtt",
        "name": "temp",
        "unit": "Cel",
    }
    time_ms = int((START + timedelta(seconds=second)).timestamp() * 1000)
    kind = "stringValue" if isinstance(value, str) else "boolValue" if isinstance(value, bool) else "value"
    return Measurement(**(base | fields), time_ms=time_ms, kind=kind, value=value)


def segment(
    times_ms: Sequence[int], values: Sequence[float], arrived_ms: int, series: Series = SERIES
) -> Segment:
    """A stored flush of ``series``: times in ms after START, all stored at START + ``arrived_ms``."""
    order = np.argsort(np.asarray(times_ms, dtype=np.int64))
    times = np.asarray(times_ms, dtype=np.int64)[order] + START_MS
    return Segment(
        id=segment_id(series, TAGS, next(_partitions), 0),
        series=series,
        tags=TAGS,
        times=times,
        values=np.asarray(values, dtype=np.float64)[order],
        arrivals=np.full(len(times), START_MS + arrived_ms, dtype=np.int64),
    )


def at(ms: int) -> datetime:
    return START + timedelta(milliseconds=ms)


async def collect(
    runtime: Runtime,
    batch_size: int,
    *,
    metric: str | list[str] = "temp",
    start: datetime | None = None,
    end: datetime | None = None,
    channel: str | None = None,
    subtopic: str | None = None,
    by: By = "time",
    stats: ReadStats | None = None,
) -> list[pl.DataFrame]:
    """The read, fetched ``batch_size`` readings at a time (at least a segment), so that small
    data sets take many fetches."""
    names = (metric,) if isinstance(metric, str) else tuple(metric)
    read = SeriesRead("t1", DEVICE, names, start, end, by, channel, subtopic)
    reader = SeriesReader(runtime.db[MEASUREMENTS], read, stats, fetch_readings=batch_size)
    return [frame async for frame in reader.frames(batch_size)]


async def table(runtime: Runtime, batch_size: int = 100, **window: object) -> pl.DataFrame:
    frames = await collect(runtime, batch_size, **window)  # type: ignore[arg-type]
    assert all(frame.height <= batch_size for frame in frames)
    return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()


def offsets(frame: pl.DataFrame) -> list[int]:
    """Each row's time, in ms after START."""
    return [(moment - START) // timedelta(milliseconds=1) for moment in frame["time"]]


def read_ahead_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == READ_AHEAD_TASK]


def queries() -> list[asyncio.Task[object]]:
    """Body queries of a read-ahead still running."""
    return [task for task in asyncio.all_tasks() if task.get_name() == QUERY_TASK]


async def test_a_series_in_time_order_in_bounded_frames(runtime: Runtime) -> None:
    repository = MeasurementRepository(runtime.db)
    # Stored out of order, with another device, another metric and another channel around it.
    seconds = [7, 3, 0, 9, 1, 8, 2, 6, 5, 4]
    noise = [
        reading(0, 1.0, publisher="dev-2"),
        reading(0, 1.0, name="hum"),
        reading(10, 99.0, channel="ch-2"),
    ]
    await repository.add_many([reading(s, 20 + s / 2) for s in seconds] + noise)

    frames = await collect(runtime, batch_size=4, channel="ch-1")
    assert [frame.height for frame in frames] == [4, 4, 2]
    whole = pl.concat(frames)
    assert whole.columns == ["publisher", "channel", "subtopic", "name", "unit", "time", "value", "created"]
    assert whole.schema["time"] == pl.Datetime("us", "UTC")
    assert whole.schema["created"] == pl.Datetime("us", "UTC")
    assert whole["time"].to_list() == [START + timedelta(seconds=s) for s in range(10)]
    assert whole["value"].to_list() == [20 + s / 2 for s in range(10)]
    assert set(whole["publisher"]) == {DEVICE}
    assert whole.filter(pl.col("created") > utcnow()).is_empty()

    # Every channel of the series when none is named.
    assert (await table(runtime)).height == 11
    assert await collect(runtime, 100, metric="missing") == []
    assert await collect(runtime, 100, subtopic="events.other") == []
    assert (await table(runtime, channel="ch-2", subtopic="events.data"))["value"].to_list() == [99.0]


async def test_window_edges_by_measured_time(runtime: Runtime) -> None:
    """``[from, to)`` to the millisecond, across segments that straddle both edges."""
    repository = MeasurementRepository(runtime.db)
    await repository.add([segment([999, 1000, 1001], [1, 2, 3], 0), segment([1999, 2000], [4, 5], 0)])
    window = await table(runtime, batch_size=2, start=at(1000), end=at(2000))
    assert offsets(window) == [1000, 1001, 1999]
    assert window["value"].to_list() == [2.0, 3.0, 4.0]
    # Open ends; an empty window.
    assert offsets(await table(runtime, end=at(1000))) == [999]
    assert offsets(await table(runtime, start=at(2000))) == [2000]
    assert await collect(runtime, 10, start=at(1002), end=at(1999)) == []


async def test_window_edges_by_arrival(runtime: Runtime) -> None:
    """Readings stored in ``[from, to)``, whatever their measured time, exported in time order;
    a late reading goes out with the next run, not never."""
    repository = MeasurementRepository(runtime.db)
    run_1, run_2 = at(60_000), at(120_000)
    await repository.add(
        [
            segment([50_000, 59_000], [1, 2], arrived_ms=59_999),  # before run 1's end: run 1
            segment([59_500], [3], arrived_ms=60_000),  # measured before, stored at run 1's end: run 2
            segment([-86_400_000, 100_000], [4, 5], arrived_ms=119_999),  # a day late, and on time
            segment([110_000], [6], arrived_ms=120_000),  # the next run's
        ]
    )
    first = await table(runtime, start=at(0), end=run_1, by="arrival")
    assert first["value"].to_list() == [1.0, 2.0]
    second = await table(runtime, batch_size=1, start=run_1, end=run_2, by="arrival")
    assert offsets(second) == [-86_400_000, 59_500, 100_000]
    assert second["created"].to_list() == [at(119_999), at(60_000), at(119_999)]
    # Readings of one flush split by the window's edge go out once each.
    await repository.add([segment([130_000, 130_001], [7, 8], arrived_ms=130_000)])
    edge = await table(runtime, start=at(120_000), end=at(130_000), by="arrival")
    assert edge["value"].to_list() == [6.0]


async def test_the_first_arrived_reading_wins_across_segments(runtime: Runtime) -> None:
    repository = MeasurementRepository(runtime.db)
    late = segment([0, 1000, 2000], [10, 11, 12], arrived_ms=5000)
    early = segment([1000, 3000], [21, 23], arrived_ms=4000)
    later_still = segment([2000, 3000, 4000], [32, 33, 34], arrived_ms=6000)
    await repository.add([late, later_still, early])
    for batch_size in (1, 2, 100):  # one segment a fetch, or all at once
        frame = await table(runtime, batch_size)
        assert offsets(frame) == [0, 1000, 2000, 3000, 4000]
        assert frame["value"].to_list() == [10.0, 21.0, 12.0, 23.0, 34.0]


async def test_overlapping_segments_are_read_with_bounded_memory(runtime: Runtime) -> None:
    """Many small segments, each overlapping the next ones and repeating some of their times: the
    frames keep the batch size and the reader holds a few segments, not the series."""
    repository = MeasurementRepository(runtime.db)
    segments = [segment([k * 50 + i * 10 for i in range(20)], [k] * 20, arrived_ms=k) for k in range(300)]
    await repository.add(segments)
    stats = ReadStats()
    frames = await collect(runtime, 16, stats=stats)  # a segment a fetch
    assert max(frame.height for frame in frames) <= 16
    whole = pl.concat(frames)
    expected = sorted({k * 50 + i * 10 for k in range(300) for i in range(20)})
    assert offsets(whole) == expected
    # Each time from the earliest segment holding it.
    assert whole["value"].to_list() == [float(max(0, -(-(t - 190) // 50))) for t in expected]
    assert stats.chunks > 100
    # A segment spans 190 ms and the next starts 50 ms later: three reach past each frontier.
    assert stats.held_segments == 3
    assert 0 < stats.held_rows <= 3 * 20


async def test_a_retired_segment_is_skipped_only_when_its_merge_is_planned(runtime: Runtime) -> None:
    """A compaction's merge and its originals may all be planned: the export is the same."""
    repository = MeasurementRepository(runtime.db)
    first, second = segment([0, 1000], [1, 2], 10), segment([1000, 2000], [3, 4], 20)
    await repository.add([first, second])
    before = await table(runtime, batch_size=1)

    merged = segment([0, 1000, 2000], [1, 2, 4], 10)
    merged = Segment(
        merged_id([first.id, second.id]),
        SERIES,
        TAGS,
        merged.times,
        merged.values,
        np.asarray([START_MS + 10, START_MS + 10, START_MS + 20]),
    )
    collection = runtime.db[MEASUREMENTS]

    async def compact(session: AsyncClientSession) -> None:
        await collection.insert_one(to_document(merged), session=session)
        await collection.update_many(
            {"_id": {"$in": [first.id, second.id]}}, {"$set": {"retiredBy": merged.id}}, session=session
        )

    await in_transaction(runtime.mongo, compact)
    read = SeriesRead("t1", DEVICE, ("temp",))
    assert [planned.id for planned in await SeriesReader(collection, read).plan()] == [merged.id]
    after = await table(runtime, batch_size=1)
    assert after.equals(before)
    # A window that plans the originals but not the merge still reads them.
    await collection.update_one({"_id": merged.id}, {"$set": {"from": at(5000), "to": at(5000)}})
    planned = await SeriesReader(collection, SeriesRead("t1", DEVICE, ("temp",), end=at(3000))).plan()
    assert sorted(p.id for p in planned) == sorted([first.id, second.id])


async def test_a_segment_deleted_after_the_plan_fails_the_read_for_a_retry(runtime: Runtime) -> None:
    """Retired segments are deleted after a retention period: one planned before its merge and
    gone before it is fetched must not silently leave a gap."""
    segments = [segment([s * 1000], [float(s)], 0) for s in range(10)]
    await MeasurementRepository(runtime.db).add(segments)
    collection = runtime.db[MEASUREMENTS]
    frames = SeriesReader(collection, SeriesRead("t1", DEVICE, ("temp",)), fetch_readings=1).frames(1)
    assert (await anext(frames))["value"].to_list() == [0.0]
    await collection.delete_one({"_id": segments[-1].id})
    with pytest.raises(SegmentsGone, match=segments[-1].id) as failure:
        async for _ in frames:
            pass
    assert is_transient(failure.value)
    assert read_ahead_tasks() == queries() == []


async def test_a_series_that_changed_kind_is_read_as_text(runtime: Runtime) -> None:
    repository = MeasurementRepository(runtime.db)
    await repository.add_many([reading(0, 1.5), reading(1, "open"), reading(2, True)])
    [frame] = await collect(runtime, batch_size=10)
    assert frame["value"].to_list() == ["1.5", "open", "true"]


async def test_stopping_early_leaves_no_read_ahead_running(runtime: Runtime) -> None:
    repository = MeasurementRepository(runtime.db)
    await repository.add([segment([s * 1000], [float(s)], 0) for s in range(50)])
    read = SeriesRead("t1", DEVICE, ("temp",))
    frames = SeriesReader(runtime.db[MEASUREMENTS], read, fetch_readings=5).frames(5)
    first = await anext(frames)
    assert first["value"].to_list() == [0.0, 1.0, 2.0, 3.0, 4.0]
    [reader] = read_ahead_tasks()  # already fetching the next chunks
    assert isinstance(frames, AsyncGenerator)
    await frames.aclose()
    assert reader.done()
    assert read_ahead_tasks() == queries() == []


async def test_a_failed_read_reaches_the_caller(runtime: Runtime) -> None:
    await MeasurementRepository(runtime.db).add([segment([s * 1000], [float(s)], 0) for s in range(50)])
    client = connect(runtime.settings)
    collection = database(client, runtime.settings)[MEASUREMENTS]
    frames = SeriesReader(collection, SeriesRead("t1", DEVICE, ("temp",)), fetch_readings=2).frames(2)
    assert (await anext(frames))["value"].to_list() == [0.0, 1.0]
    await client.close()  # the connection lost while chunks are still to be read
    with pytest.raises(InvalidOperation, match="after close"):
        async for _ in frames:
            pass
    assert read_ahead_tasks() == queries() == []


async def test_several_metrics_merged_in_time_order(runtime: Runtime) -> None:
    repository = MeasurementRepository(runtime.db)
    temperatures = [reading(s, float(s)) for s in range(0, 20, 2)]
    humidities = [reading(s, f"h{s}", name="hum") for s in (1, 2, 3, 9, 30)]
    await repository.add_many([*temperatures, *humidities, reading(5, 0.0, name="other")])

    frames = await collect(runtime, 3, metric=["temp", "hum"])
    assert all(frame.height <= 3 for frame in frames)
    merged = pl.concat(frames, how="vertical_relaxed")
    seconds = [int((moment - START).total_seconds()) for moment in merged["time"]]
    assert seconds == sorted(seconds)
    assert sorted(zip(seconds, merged["name"], strict=True)) == sorted(
        [(s, "temp") for s in range(0, 20, 2)] + [(s, "hum") for s in (1, 2, 3, 9, 30)]
    )

    in_window = await table(runtime, 10, metric=["temp", "hum"], start=START, end=at(4000))
    # Within one millisecond, series come in no particular order.
    assert sorted(zip(offsets(in_window), in_window["value"], strict=True)) == [
        (0, "0.0"),
        (1000, "h1"),
        (2000, "2.0"),
        (2000, "h2"),
        (3000, "h3"),
    ]

    stopped = SeriesReader(
        runtime.db[MEASUREMENTS], SeriesRead("t1", DEVICE, ("temp", "hum")), fetch_readings=2
    ).frames(2)
    await anext(stopped)
    await stopped.aclose()
    assert read_ahead_tasks() == queries() == []


async def test_the_repository_reads_through_the_same_reader(runtime: Runtime) -> None:
    """The renderer's entry: large fetches, frames of the batch size, the window by arrival."""
    repository = MeasurementRepository(runtime.db)
    await repository.add(
        [segment([s * 1000 for s in range(k * 10, k * 10 + 10)], [k] * 10, k) for k in range(30)]
    )
    frames = repository.frames("t1", DEVICE, "temp", None, None, 7)
    assert [frame.height for frame in [frame async for frame in frames]] == [7] * 42 + [6]
    late = repository.frames("t1", DEVICE, ["temp"], at(0), at(10), 100, "ch-1", "events.data", "arrival")
    assert [frame["value"].to_list() async for frame in late] == [
        [float(k) for k in range(10) for _ in range(10)]
    ]

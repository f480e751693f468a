"""The renderer's read path against the real store: one series, in time order, in bounded frames,
read ahead of the caller, and nothing left running when the caller stops early."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from pymongo.errors import InvalidOperation

from exporter.adapters.mongo.client import connect, database
from exporter.adapters.mongo.measurements import READ_AHEAD_TASK, MeasurementRepository
from exporter.contracts.base import utcnow
from exporter.contracts.ingest import Measurement
from exporter.runtime import Runtime

pytestmark = pytest.mark.servers
START = datetime(2026, 3, 1, tzinfo=UTC)
DEVICE = "dev-1"


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


async def collect(
    repository: MeasurementRepository,
    batch_size: int,
    *,
    metric: str = "temp",
    start: datetime | None = None,
    end: datetime | None = None,
    channel: str | None = None,
    subtopic: str | None = None,
) -> list[pl.DataFrame]:
    frames = repository.frames("t1", DEVICE, metric, start, end, batch_size, channel, subtopic)
    return [frame async for frame in frames]


def read_ahead_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == READ_AHEAD_TASK]


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

    frames = await collect(repository, batch_size=4, channel="ch-1")
    assert [frame.height for frame in frames] == [4, 4, 2]
    table = pl.concat(frames)
    assert table.columns == ["publisher", "channel", "subtopic", "name", "unit", "time", "value", "created"]
    assert table.schema["time"] == pl.Datetime("us", "UTC")
    assert table.schema["created"] == pl.Datetime("us", "UTC")
    assert table["time"].to_list() == [START + timedelta(seconds=s) for s in range(10)]
    assert table["value"].to_list() == [20 + s / 2 for s in range(10)]
    assert set(table["publisher"]) == {DEVICE}
    assert table.filter(pl.col("created") > utcnow()).is_empty()

    # Every channel of the series when none is named; the window is [start, end).
    assert pl.concat(await collect(repository, batch_size=100)).height == 11
    window = await collect(
        repository, 100, start=START + timedelta(seconds=2), end=START + timedelta(seconds=5)
    )
    assert pl.concat(window)["time"].to_list() == [START + timedelta(seconds=s) for s in (2, 3, 4)]
    assert await collect(repository, 100, metric="missing") == []
    assert await collect(repository, 100, subtopic="events.other") == []


async def test_a_series_that_changed_kind_is_read_as_text(runtime: Runtime) -> None:
    repository = MeasurementRepository(runtime.db)
    await repository.add_many([reading(0, 1.5), reading(1, "open"), reading(2, True)])
    [frame] = await collect(repository, batch_size=10)
    assert frame["value"].to_list() == ["1.5", "open", "True"]


async def test_stopping_early_leaves_no_read_ahead_running(runtime: Runtime) -> None:
    repository = MeasurementRepository(runtime.db)
    await repository.add_many([reading(s, float(s)) for s in range(50)])
    frames = repository.frames("t1", DEVICE, "temp", None, None, 5)
    first = await anext(frames)
    assert first["value"].to_list() == [0.0, 1.0, 2.0, 3.0, 4.0]
    [reader] = read_ahead_tasks()  # already fetching the next batches
    assert isinstance(frames, AsyncGenerator)
    await frames.aclose()
    assert reader.done()
    assert read_ahead_tasks() == []


async def test_a_failed_read_reaches_the_caller(runtime: Runtime) -> None:
    await MeasurementRepository(runtime.db).add_many([reading(s, float(s)) for s in range(50)])
    client = connect(runtime.settings)
    frames = MeasurementRepository(database(client, runtime.settings)).frames(
        "t1", DEVICE, "temp", None, None, 2
    )
    assert (await anext(frames))["value"].to_list() == [0.0, 1.0]
    await client.close()  # the connection lost while batches are still to be read
    with pytest.raises(InvalidOperation, match="after close"):
        async for _ in frames:
            pass
    assert read_ahead_tasks() == []


async def test_several_metrics_merged_in_time_order(runtime: Runtime) -> None:
    repository = MeasurementRepository(runtime.db)
    temperatures = [reading(s, float(s)) for s in range(0, 20, 2)]
    humidities = [reading(s, f"h{s}", name="hum") for s in (1, 2, 3, 9, 30)]
    await repository.add_many([*temperatures, *humidities, reading(5, 0.0, name="other")])

    frames = [frame async for frame in repository.frames("t1", DEVICE, ["temp", "hum"], None, None, 3)]
    assert all(frame.height <= 3 for frame in frames)
    table = pl.concat(frames, how="vertical_relaxed")
    seconds = [int((moment - START).total_seconds()) for moment in table["time"]]
    assert seconds == sorted(seconds)
    assert sorted(zip(seconds, table["name"], strict=True)) == sorted(
        [(s, "temp") for s in range(0, 20, 2)] + [(s, "hum") for s in (1, 2, 3, 9, 30)]
    )

    window = repository.frames("t1", DEVICE, ["temp", "hum"], START, START + timedelta(seconds=4), 10)
    in_window = pl.concat([frame async for frame in window], how="vertical_relaxed")
    assert in_window["value"].to_list() == ["0.0", "h1", "2.0", "h2", "h3"]

    stopped = repository.frames("t1", DEVICE, ["temp", "hum"], None, None, 2)
    assert isinstance(stopped, AsyncGenerator)
    await anext(stopped)
    await stopped.aclose()
    assert read_ahead_tasks() == []

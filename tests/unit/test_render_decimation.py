"""Decimation checked against a plain-Python computation over the same rows, DST days in Rome included."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from exporter.contracts.request import Decimation, DownsampleFunction
from exporter.rendering.decimation import DecimationError, Decimator, decimate, decimated_frames

ROME = ZoneInfo("Europe/Rome")
FUNCTIONS: list[DownsampleFunction] = ["avg", "min", "max", "sum", "count", "first", "last"]


def measurements() -> list[dict[str, Any]]:
    """Two series every 7 minutes over both 2026 DST changes in Rome (and the days around them)."""
    rows = []
    for start in (datetime(2026, 3, 28, 20, tzinfo=UTC), datetime(2026, 10, 24, 20, tzinfo=UTC)):
        for step in range(0, 36 * 60 // 7):
            moment = start + timedelta(minutes=7 * step)
            for publisher in ("dev-1", "dev-2"):
                value = None if step % 11 == 5 else float((step * 37 + len(publisher)) % 101) - 50
                rows.append(
                    {"publisher": publisher, "name": "power", "unit": "W", "time": moment, "value": value}
                )
    return rows


def bucket_start(moment: datetime, ds: str) -> datetime:
    """The local calendar by hand: floor the local wall time. When that wall time happens twice (the
    night DST ends), take the pass with the measurement's own UTC offset; when it never happens (the
    night DST starts), the instant the clock jumps forward: so buckets never overlap."""
    local = moment.astimezone(ROME)
    if ds == "1d":
        wall = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    else:
        minutes = {"15m": 15, "1h": 60, "2h": 120}[ds]
        floored = (local.hour * 60 + local.minute) // minutes * minutes
        wall = local.replace(hour=floored // 60, minute=floored % 60, second=0, microsecond=0, tzinfo=None)
    passes = [wall.replace(tzinfo=ROME, fold=fold) for fold in (0, 1)]
    real = [start for start in passes if start.astimezone(UTC).astimezone(ROME).replace(tzinfo=None) == wall]
    same_offset = [start for start in real if start.utcoffset() == local.utcoffset()]
    # zoneinfo reads a wall time in the gap with the offset before it: the jump's instant.
    return (same_offset or real or passes)[0].astimezone(UTC)


def aggregate(values: list[Any], function: DownsampleFunction) -> Any:
    present = [value for value in values if value is not None]
    match function:
        case "avg":
            return sum(present) / len(present)
        case "min":
            return min(present)
        case "max":
            return max(present)
        case "sum":
            return sum(present)
        case "count":
            return len(present)
        case "first":
            return present[0]
        case "last":
            return present[-1]


def expected(rows: list[dict[str, Any]], ds: str, function: DownsampleFunction) -> list[tuple[Any, ...]]:
    buckets: dict[tuple[datetime, str, str], list[Any]] = defaultdict(list)
    for row in rows:
        buckets[(bucket_start(row["time"], ds), row["publisher"], row["name"])].append(row["value"])
    return [(*key, aggregate(values, function)) for key, values in sorted(buckets.items())]


def actual(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    return [(row["time"], row["publisher"], row["name"], row["value"]) for row in frame.iter_rows(named=True)]


@pytest.mark.parametrize("ds", ["15m", "1h", "2h", "1d"])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_matches_an_independent_computation(ds: str, function: DownsampleFunction) -> None:
    rows = measurements()
    result = decimate(pl.DataFrame(rows), Decimation(ds=ds, dsf=function), "Europe/Rome")
    assert result.columns == ["publisher", "name", "unit", "time", "value"]
    computed, wanted = actual(result), expected(rows, ds, function)
    assert [row[:3] for row in computed] == [row[:3] for row in wanted]
    assert [row[3] for row in computed] == pytest.approx([row[3] for row in wanted])


def test_days_start_at_local_midnight_across_dst() -> None:
    result = decimate(pl.DataFrame(measurements()), Decimation(ds="1d", dsf="count"), "Europe/Rome")
    midnights = [
        datetime(2026, 3, 27, 23, tzinfo=UTC),  # 28 March, CET
        datetime(2026, 3, 28, 23, tzinfo=UTC),  # 29 March, 23 hours long
        datetime(2026, 3, 29, 22, tzinfo=UTC),  # 30 March, CEST
        datetime(2026, 10, 23, 22, tzinfo=UTC),  # 24 October, CEST
        datetime(2026, 10, 24, 22, tzinfo=UTC),  # 25 October, 25 hours long
        datetime(2026, 10, 25, 23, tzinfo=UTC),  # 26 October, CET
    ]
    assert result.filter(publisher="dev-1")["time"].to_list() == midnights


def test_the_repeated_hour_is_two_buckets() -> None:
    result = decimate(pl.DataFrame(measurements()), Decimation(ds="1h", dsf="count"), "Europe/Rome")
    local = (
        result.filter(publisher="dev-1")["time"].dt.convert_time_zone("Europe/Rome").dt.to_string("%H:%M%z")
    )
    assert "02:00+0200" in local.to_list()
    assert "02:00+0100" in local.to_list()


def test_streamed_frames_give_the_same_buckets_as_one_frame() -> None:
    frame = pl.DataFrame(measurements())
    decimation = Decimation(ds="1h", dsf="avg")
    decimator = Decimator(decimation, "Europe/Rome")
    pieces = [decimator.feed(frame.slice(offset, 37)) for offset in range(0, frame.height, 37)]
    streamed = pl.concat([piece for piece in [*pieces, decimator.finish()] if piece.height])
    assert streamed.equals(decimate(frame, decimation, "Europe/Rome"))


async def test_a_stores_frames_are_decimated_as_they_come() -> None:
    frame = pl.DataFrame(measurements())
    decimation = Decimation(ds="1d", dsf="max")

    async def store() -> AsyncIterator[pl.DataFrame]:
        for offset in range(0, frame.height, 100):
            yield frame.slice(offset, 100)

    pieces = [piece async for piece in decimated_frames(store(), decimation, "Europe/Rome")]
    assert all(piece.height for piece in pieces)
    assert pl.concat(pieces).equals(decimate(frame, decimation, "Europe/Rome"))


def test_streamed_frames_must_come_in_time_order() -> None:
    frame = pl.DataFrame(measurements())
    decimator = Decimator(Decimation(ds="1h", dsf="avg"), "Europe/Rome")
    decimator.feed(frame.slice(100, 10))
    with pytest.raises(ValueError, match="time order"):
        decimator.feed(frame.slice(0, 10))


def text_rows() -> pl.DataFrame:
    rows = measurements()[:40]
    return pl.DataFrame(rows).with_columns(value=pl.col("value").cast(pl.String))


@pytest.mark.parametrize("function", ["count", "first", "last"])
def test_text_values_are_counted_or_picked(function: DownsampleFunction) -> None:
    frame = text_rows()
    rows = frame.to_dicts()
    result = decimate(frame, Decimation(ds="1h", dsf=function), "Europe/Rome")
    assert actual(result) == expected(rows, "1h", function)


@pytest.mark.parametrize(("dtype", "kind"), [(pl.String, "text"), (pl.Boolean, "boolean")])
@pytest.mark.parametrize("function", ["avg", "min", "max", "sum"])
def test_text_and_booleans_refuse_arithmetic(
    dtype: pl.DataType, kind: str, function: DownsampleFunction
) -> None:
    frame = pl.DataFrame(measurements()[:10]).with_columns(pl.col("value").cast(dtype))
    message = (
        f"decimation function '{function}' cannot aggregate the {kind} values of 'value'; use one of: count"
    )
    with pytest.raises(DecimationError, match=message):
        decimate(frame, Decimation(ds="1h", dsf=function), "Europe/Rome")

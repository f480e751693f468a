"""Decimation: one row per series and bucket, the buckets aligned to the target timezone's calendar.

A ``1d`` bucket starts at local midnight (23 or 25 hours long on a DST change), a ``1h`` bucket on
the local hour. When DST ends and a wall time happens twice, a bucket start keeps its rows' UTC
offset, so buckets never overlap: each pass of the repeated hour is an hourly bucket of its own, and
a ``2h`` bucket from 02:00 becomes 02:00 CEST (one hour long) and 02:00 CET (two hours long).
When DST starts, a bucket whose wall-clock start is skipped starts when the clock jumps.
A bucket's row carries the bucket's start as its time, and its first row's other fields.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Protocol

import polars as pl

from exporter.contracts.request import Decimation, DownsampleFunction
from exporter.contracts.time_bounds import parse_downsample
from exporter.rendering.table import UTC_TIMES

TIME = "time"
SERIES = ("publisher", "name")
VALUES = ("value",)
# What can be said of text and booleans without pretending they are numbers.
KIND_NEUTRAL: frozenset[DownsampleFunction] = frozenset({"count", "first", "last"})


class DecimationError(ValueError):
    """A decimation function that makes no sense for a series' kind of values."""


def bucket_starts(times: pl.Expr, every: str, timezone: str) -> pl.Expr:
    """Each time's bucket start (a UTC instant) on the local calendar of ``timezone``."""
    parse_downsample(every)  # `15m`, `1h`, `1d` are also polars intervals, with the same meaning
    local = times.cast(UTC_TIMES).dt.convert_time_zone(timezone)
    return local.dt.truncate(every).dt.convert_time_zone("UTC")


def _kind(dtype: pl.DataType) -> str | None:
    """The kind of values a function must be able to aggregate; ``None`` for numbers."""
    if dtype.is_numeric() or dtype == pl.Null:
        return None
    return "boolean" if dtype == pl.Boolean else "text"


def check_function(function: DownsampleFunction, dtype: pl.DataType, column: str = "value") -> None:
    kind = _kind(dtype)
    if kind is not None and function not in KIND_NEUTRAL:
        allowed = ", ".join(sorted(KIND_NEUTRAL))
        raise DecimationError(
            f"decimation function '{function}' cannot aggregate the {kind} values of '{column}'; "
            f"use one of: {allowed}"
        )


def _aggregate(column: str, function: DownsampleFunction) -> pl.Expr:
    values = pl.col(column)
    match function:
        case "avg":
            return values.mean()
        case "min":
            return values.min()
        case "max":
            return values.max()
        case "sum":
            return values.sum()
        case "count":
            return values.count().cast(pl.Int64)
        case "first":
            return values.drop_nulls().first()
        case "last":
            return values.drop_nulls().last()


def decimate(
    frame: pl.DataFrame,
    decimation: Decimation,
    timezone: str,
    series: Sequence[str] = SERIES,
    values: Sequence[str] = VALUES,
) -> pl.DataFrame:
    """Rows in time order in; one row per series and bucket out, by time then series, same columns."""
    for column in values:
        check_function(decimation.dsf, frame.schema[column], column)
    keys = [*series, TIME]
    others = [column for column in frame.columns if column not in keys and column not in values]
    decimated = (
        frame.with_columns(bucket_starts(pl.col(TIME), decimation.ds, timezone).alias(TIME))
        .group_by(keys, maintain_order=True)
        .agg(
            *(_aggregate(column, decimation.dsf) for column in values),
            *(pl.col(column).first() for column in others),
        )
    )
    return decimated.sort([TIME, *series], maintain_order=True).select(frame.columns)


class Decimator:
    """Decimates a stream of frames in time order, holding back only the rows of its last bucket.

    A bucket may straddle two frames, so the rows of the latest bucket wait for the next frame (or
    ``finish``); every earlier bucket is complete, whatever the series.
    """

    def __init__(
        self,
        decimation: Decimation,
        timezone: str,
        series: Sequence[str] = SERIES,
        values: Sequence[str] = VALUES,
    ) -> None:
        self._decimation = decimation
        self._timezone = timezone
        self._series = series
        self._values = values
        self._pending: pl.DataFrame | None = None

    def feed(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The buckets that ``frame`` completes (possibly none: an empty frame)."""
        rows = frame if self._pending is None else self._joined(frame)
        if rows.is_empty():
            return self._decimate(rows)
        starts = rows.select(bucket_starts(pl.col(TIME), self._decimation.ds, self._timezone)).to_series()
        latest = starts == starts.max()
        self._pending = rows.filter(latest)
        return self._decimate(rows.filter(~latest))

    def finish(self) -> pl.DataFrame:
        """The last bucket, now that no later rows can join it (an empty frame if none)."""
        pending, self._pending = self._pending, None
        return self._decimate(pending) if pending is not None else pl.DataFrame()

    def _joined(self, frame: pl.DataFrame) -> pl.DataFrame:
        assert self._pending is not None
        if frame.height and self._pending[TIME].max() > frame[TIME].min():  # type: ignore[operator]
            raise ValueError("frames to decimate must come in time order")
        # A series whose values changed kind between frames comes out in their common supertype.
        return pl.concat([self._pending, frame], how="vertical_relaxed")

    def _decimate(self, rows: pl.DataFrame) -> pl.DataFrame:
        return decimate(rows, self._decimation, self._timezone, self._series, self._values)


class FrameStage(Protocol):
    """A streaming step over frames in time order that may hold rows back until later ones come."""

    def feed(self, frame: pl.DataFrame) -> pl.DataFrame: ...

    def finish(self) -> pl.DataFrame: ...


async def through(frames: AsyncIterable[pl.DataFrame], stage: FrameStage) -> AsyncIterator[pl.DataFrame]:
    """``frames`` passed through ``stage``, the empty results left out."""
    async for frame in frames:
        if (done := stage.feed(frame)).height:
            yield done
    if (last := stage.finish()).height:
        yield last


def decimated_frames(
    frames: AsyncIterable[pl.DataFrame], decimation: Decimation, timezone: str
) -> AsyncIterator[pl.DataFrame]:
    """A store's frames of one item, in time order, as frames of complete buckets (none empty)."""
    return through(frames, Decimator(decimation, timezone))

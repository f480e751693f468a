"""Thing files (seed 001): a thing's metrics side by side, one row per time, a column per metric."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from exporter.rendering.decimation import TIME
from exporter.rendering.table import VALUE_COLUMN, metric_column

METRIC = "name"


class Widener:
    """Measurements of several metrics in time order in; one row per time out, with a column per
    metric in the given order (empty where a metric has no reading at that time).

    A time's readings may straddle two frames, so the rows of the latest time wait for the next
    frame (or ``finish``). Two readings of one metric at one time (two channels): the first wins.
    """

    def __init__(self, metrics: Sequence[str]) -> None:
        self.metrics = tuple(metrics)
        self._pending: pl.DataFrame | None = None

    def feed(self, frame: pl.DataFrame) -> pl.DataFrame:
        rows = frame if self._pending is None else pl.concat([self._pending, frame], how="vertical_relaxed")
        if rows.is_empty():
            return self._widen(rows)
        latest = rows[TIME] == rows[TIME].max()
        self._pending = rows.filter(latest)
        return self._widen(rows.filter(~latest))

    def finish(self) -> pl.DataFrame:
        pending, self._pending = self._pending, None
        return self._widen(pending) if pending is not None else self._widen(pl.DataFrame())

    def _widen(self, rows: pl.DataFrame) -> pl.DataFrame:
        columns = [metric_column(metric) for metric in self.metrics]
        if rows.is_empty():
            return pl.DataFrame(schema=[TIME, *columns])
        wide = rows.pivot(on=METRIC, index=TIME, values=VALUE_COLUMN, aggregate_function="first")
        return wide.select(
            pl.col(TIME),
            *(
                (pl.col(metric) if metric in wide.columns else pl.lit(None)).alias(column)
                for metric, column in zip(self.metrics, columns, strict=True)
            ),
        ).sort(TIME)

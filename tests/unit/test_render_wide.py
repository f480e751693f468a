"""A thing's metrics side by side: one row per time, a column per metric, across frame boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from exporter.rendering.wide import Widener

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def readings(*rows: tuple[int, str, float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "publisher": ["dev"] * len(rows),
            "name": [name for _, name, _ in rows],
            "time": [T0 + timedelta(seconds=second) for second, _, _ in rows],
            "value": [value for _, _, value in rows],
        }
    )


def test_rows_of_one_time_join_even_across_frames() -> None:
    widener = Widener(["weight", "temperature", "humidity"])
    first = widener.feed(readings((0, "weight", 1.0), (0, "temperature", 20.0), (1, "weight", 2.0)))
    second = widener.feed(readings((1, "temperature", 21.0), (2, "temperature", 22.0)))
    last = widener.finish()

    table = pl.concat([first, second, last])
    assert table.columns == ["time", "value:weight", "value:temperature", "value:humidity"]
    assert table.rows() == [
        (T0, 1.0, 20.0, None),
        (T0 + timedelta(seconds=1), 2.0, 21.0, None),
        (T0 + timedelta(seconds=2), None, 22.0, None),
    ]
    assert first.height == 1  # second 1 waited for its temperature


def test_the_first_reading_of_a_metric_at_a_time_wins_and_empty_frames_pass() -> None:
    widener = Widener(["weight"])
    assert widener.feed(readings()).height == 0
    widener.feed(readings((0, "weight", 1.0), (0, "weight", 9.0)))
    assert widener.finish().rows() == [(T0, 1.0)]
    assert widener.finish().height == 0

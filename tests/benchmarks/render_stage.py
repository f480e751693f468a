"""The rendering stage alone: measurements already in a polars frame in memory → a file's bytes.

Per format, rows/s through the real path (layout, writer, a sink that takes the bytes), beside two
references on the same rows: polars writing them as CSV (the ceiling) and a plain Python ``csv``
module loop over them as dicts, as PyMongo hands documents over (what a user would write).
XLSX and PDF are measured on at most ``SLOW_FORMAT_ROWS`` rows, so a large run stays short.

    python -m tests.benchmarks.render_stage [rows]
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from exporter.contracts.request import DEFAULT_COLUMNS, Extension
from exporter.rendering.output import WRITERS
from exporter.rendering.table import Layout
from exporter.rendering.writers import Document, TableWriter

TIMEZONE = "Europe/Rome"
BATCH_ROWS = 10_000
SLOW_FORMAT_ROWS = 50_000
FORMATS: tuple[Extension, ...] = ("csv", "jsonl", "json", "xlsx", "pdf")


class CountingSink:
    """Takes the bytes and keeps only their number: what is measured is the rendering."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self.size += len(data)
        return len(data)


def measurements(rows: int) -> pl.DataFrame:
    """One device's readings every second, shaped as the store's frames are."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    times = pl.datetime_range(start, start + timedelta(seconds=rows - 1), "1s", time_zone="UTC", eager=True)
    return pl.DataFrame(
        {
            "publisher": pl.repeat("D0CF5EFFFE26FDAB1", rows, eager=True),
            "channel": pl.repeat("0115c85d-ef3e-4de9-9732-d0c5c4f2c482", rows, eager=True),
            "subtopic": pl.repeat("events.data", rows, eager=True),
            "name": pl.repeat("temperature", rows, eager=True),
            "unit": pl.repeat("Cel", rows, eager=True),
            "time": times,
            "value": (pl.int_range(rows, eager=True) % 1000).cast(pl.Float64) / 8 - 20,
            "created": times,
        }
    )


def rows_per_second(rows: int, started: float) -> float:
    return rows / max(time.perf_counter() - started, 1e-9)


def render_rate(writer: type[TableWriter], frame: pl.DataFrame) -> float:
    layout = Layout(
        DEFAULT_COLUMNS,
        TIMEZONE,
        native_times=writer.native_times,
        neutralise=writer.neutralises_formulas,
    )
    document = Document(layout.labels, title="Benchmark", timezone=TIMEZONE)
    started = time.perf_counter()
    with writer(CountingSink(), document) as output:
        for batch in frame.iter_slices(BATCH_ROWS):
            output.write(layout.shape(batch))
    return rows_per_second(frame.height, started)


# Polars' own writers: the ceiling of rendering these rows in each text format.
POLARS_WRITES: dict[Extension, Callable[[pl.DataFrame, Path | io.BytesIO], object]] = {
    "csv": lambda frame, target: frame.write_csv(target),
    "jsonl": lambda frame, target: frame.write_ndjson(target),
    "json": lambda frame, target: frame.write_json(target),
}


def polars_rate(frame: pl.DataFrame, extension: Extension, target: Path | io.BytesIO) -> float:
    started = time.perf_counter()
    POLARS_WRITES[extension](frame, target)
    return rows_per_second(frame.height, started)


def csv_row(document: Mapping[str, Any], zone: ZoneInfo) -> list[object]:
    """The default layout's columns by hand, from a document with an aware ``time``."""
    moment = document["time"].astimezone(zone).isoformat(timespec="milliseconds")
    return [moment, document["publisher"], document["name"], document["value"], document["unit"]]


def csv_module_rate(frame: pl.DataFrame) -> float:
    """The same columns as the default layout, by hand: local ISO times, one ``writerow`` a row."""
    documents = frame.to_dicts()
    zone = ZoneInfo(TIMEZONE)
    sink = CountingSink()
    started = time.perf_counter()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([column.label for column in DEFAULT_COLUMNS])
    for index, row in enumerate(documents, start=1):
        writer.writerow(csv_row(row, zone))
        if index % BATCH_ROWS == 0:
            sink.write(text.getvalue().encode())
            text.seek(0)
            text.truncate()
    sink.write(text.getvalue().encode())
    return rows_per_second(frame.height, started)


def measure_render_stage(frame: pl.DataFrame) -> dict[str, float]:
    """Rows/s per format, then ``polars_csv`` (the ceiling) and ``csv_module`` (a plain loop)."""
    for extension in FORMATS:  # first calls compile polars' expressions and regexes: not measured
        render_rate(WRITERS[extension], frame.head(1_000))
    rates: dict[str, float] = {}
    for extension in FORMATS:
        slow = extension in {"xlsx", "pdf"}
        rates[extension] = render_rate(WRITERS[extension], frame.head(SLOW_FORMAT_ROWS) if slow else frame)
    rates["polars_csv"] = polars_rate(frame, "csv", io.BytesIO())
    rates["csv_module"] = csv_module_rate(frame)
    return rates


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    rates = measure_render_stage(measurements(rows))
    print(f"rendering stage, {rows:,} rows (xlsx and pdf: at most {SLOW_FORMAT_ROWS:,})")
    for name, rate in rates.items():
        print(f"  {name:<11} {rate:>12,.0f} rows/s  {rate / rates['csv_module']:6.1f}x the csv module loop")


if __name__ == "__main__":
    main()

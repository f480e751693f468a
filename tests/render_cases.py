"""The fixed data set of the rendering golden tests, and a helper that renders it to bytes."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import polars as pl

from exporter.contracts.request import Column
from exporter.rendering.table import Layout
from exporter.rendering.writers import Document, TableWriter

ROME = "Europe/Rome"

# Measurements as the store hands them over: around the March DST change in Rome, in summer, in
# winter with milliseconds; text a spreadsheet would run, text that needs quoting, a missing value.
MEASUREMENTS = pl.DataFrame(
    {
        "publisher": ["dev-1", "dev-1", '=HYPERLINK("http://evil")', "dev-2"],
        "channel": ["c1"] * 4,
        "subtopic": ["events.data"] * 4,
        "name": ["weight", 'say "hi", then\nbye', "@SUM(A1)", "Città ☃"],
        "unit": ["kg"] * 4,
        "time": [
            datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # 01:30 CET
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # 03:30 CEST, just after the change
            datetime(2026, 7, 1, 10, 0, tzinfo=UTC),  # 12:00 CEST
            datetime(2026, 12, 1, 10, 0, 0, 123_000, tzinfo=UTC),  # 11:00:00.123 CET
        ],
        "value": [1.5, -2.25, 3.0, None],
        "created": [datetime(2026, 12, 2, tzinfo=UTC)] * 4,
    }
)
COLUMNS = (
    Column(id="time", label="Time"),
    Column(id="publisher", label="Device"),
    Column(id="name", label="Metric, name"),
    Column(id="value", label="Weight"),
)
LOCAL_TIMES = [
    "2026-03-29T01:30:00.000+01:00",
    "2026-03-29T03:30:00.000+02:00",
    "2026-07-01T12:00:00.000+02:00",
    "2026-12-01T11:00:00.123+01:00",
]
WINDOW = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def layout_for(writer: type[TableWriter], unit: str | None = None) -> Layout:
    return Layout(
        COLUMNS,
        ROME,
        unit=unit,
        native_times=writer.native_times,
        neutralise=writer.neutralises_formulas,
    )


def document(layout: Layout, title: str = "Scale 7") -> Document:
    return Document(
        layout.labels,
        title=title,
        request_name="Weights of March",
        window_from=WINDOW[0],
        window_to=WINDOW[1],
        timezone=ROME,
    )


def render(writer: type[TableWriter], frames: list[pl.DataFrame], layout: Layout | None = None) -> bytes:
    """The bytes ``writer`` makes of ``frames`` of measurements, shaped for it."""
    layout = layout or layout_for(writer)
    sink = io.BytesIO()
    with writer(sink, document(layout)) as output:
        for frame in frames:
            output.write(layout.shape(frame))
    return sink.getvalue()

"""Rendering rules: columns, labels, time zones, formula injection, file names."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from exporter.contracts.request import Column, Item
from exporter.rendering.files import file_names, object_key
from exporter.rendering.table import shape
from exporter.rendering.writers import CsvWriter

FRAME = pl.DataFrame(
    {
        "publisher": ['=HYPERLINK("http://x")', "dev-2"],
        "channel": ["c", "c"],
        "subtopic": ["", ""],
        "name": ["temp", "temp"],
        "unit": ["C", "C"],
        "time": [datetime(2026, 7, 1, 10, 0, tzinfo=UTC), datetime(2026, 12, 1, 10, 0, tzinfo=UTC)],
        "value": [-1.5, 2.0],
        "created": [datetime(2026, 7, 1, 10, 0, 1, tzinfo=UTC)] * 2,
    }
)


def test_only_requested_columns_in_order_with_labels_and_local_time() -> None:
    columns = [Column(id="value", label="Temperatura"), Column(id="time", label="Ora")]
    table = shape(FRAME, columns, "Europe/Rome")
    assert table.columns == ["Temperatura", "Ora"]
    assert table["Ora"].to_list() == ["2026-07-01T12:00:00.000+02:00", "2026-12-01T11:00:00.000+01:00"]
    assert table["Temperatura"].to_list() == [-1.5, 2.0]  # numbers are not text: no quote added


def test_text_that_a_spreadsheet_would_run_is_neutralised() -> None:
    texts = ['=HYPERLINK("http://x")', "@SUM(A1)", "-2+3", "\tcmd", "dev-2", "a=b"]
    frame = FRAME.head(1).select(pl.lit(pl.Series(texts)).alias("publisher"))
    table = shape(frame, [Column(id="publisher", label="p")], "UTC")
    neutralised = ['\'=HYPERLINK("http://x")', "'@SUM(A1)", "'-2+3", "'\tcmd"]
    assert table["p"].to_list() == [*neutralised, "dev-2", "a=b"]


def test_csv_is_rfc4180_with_one_header_across_frames(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    columns = [Column(id="name", label="Metric, name"), Column(id="value", label="Value")]
    with CsvWriter(path, [c.label for c in columns]) as writer:
        writer.write(shape(FRAME, columns, "UTC"))
        writer.write(shape(FRAME, columns, "UTC"))
    raw = path.read_bytes()
    assert raw.startswith(b'"Metric, name",Value\r\n')
    rows = list(csv.reader(raw.decode().splitlines()))
    assert rows == [["Metric, name", "Value"]] + [["temp", "-1.5"], ["temp", "2.0"]] * 2


def test_empty_export_still_has_its_header(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    with CsvWriter(path, ["A", "B"]):
        pass
    assert path.read_bytes() == b"A,B\r\n"


def test_file_names_are_unique_within_a_job() -> None:
    item = Item.model_validate({"params": {"target": {"value": "urn:x:d:m"}}, "filename": "report"})
    bare = Item.model_validate({"params": {"target": {"value": "urn:x:d:m"}}})
    names = file_names([item, item, bare, item], "csv")
    assert names == ["report.csv", "report-2.csv", "export-3.csv", "report-3.csv"]
    assert object_key("acme", "r1", "j1", "report.csv") == "acme/r1/j1/report.csv"

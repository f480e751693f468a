"""XLSX on the fixed data set, read back with openpyxl: values, real datetimes, styles, sheet split."""

from __future__ import annotations

import io
import re
from datetime import datetime

import openpyxl
import polars as pl
import pytest

from exporter.rendering.sinks import BinarySink
from exporter.rendering.writers import Document
from exporter.rendering.xlsx import XlsxWriter
from tests.render_cases import MEASUREMENTS, layout_for, render

LOCAL = [
    datetime(2026, 3, 29, 1, 30),
    datetime(2026, 3, 29, 3, 30),
    datetime(2026, 7, 1, 12, 0),
    datetime(2026, 12, 1, 11, 0, 0, 123_000),
]


def read(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def values(sheet: openpyxl.worksheet.worksheet.Worksheet) -> list[tuple[object, ...]]:
    return [tuple(cell.value for cell in row) for row in sheet.iter_rows()]


def excel_text(value: object) -> str:
    """What Excel shows: openpyxl leaves Excel's `_xHHHH_` escapes (of control characters) as they are."""
    return re.sub("_x([0-9A-F]{4})_", lambda match: chr(int(match[1], 16)), str(value))


def test_values_labels_and_local_datetimes() -> None:
    book = read(render(XlsxWriter, [MEASUREMENTS.head(2), MEASUREMENTS.tail(2)]))
    assert book.sheetnames == ["Data"]
    sheet = book["Data"]
    assert values(sheet) == [
        ("Time", "Device", "Metric, name", "Weight"),
        (LOCAL[0], "dev-1", "weight", 1.5),
        (LOCAL[1], "dev-1", 'say "hi", then\nbye', -2.25),
        (LOCAL[2], '=HYPERLINK("http://evil")', "@SUM(A1)", 3),
        (LOCAL[3], "dev-2", "Città ☃", None),
    ]
    assert sheet["A2"].is_date
    assert sheet["A2"].number_format == "yyyy-mm-dd hh:mm:ss.000"
    assert book.properties.title == "Scale 7"


def test_text_that_looks_like_a_formula_stays_text() -> None:
    sheet = read(render(XlsxWriter, [MEASUREMENTS]))["Data"]
    for cell in (sheet["B4"], sheet["C4"]):
        assert cell.data_type == "s"  # a string cell: Excel never evaluates it
        assert cell.quotePrefix  # and keeps it text when someone edits it
    assert not sheet["B2"].quotePrefix
    assert not any(cell.data_type == "f" for row in sheet.iter_rows() for cell in row)


def test_header_is_styled_frozen_and_columns_are_sized() -> None:
    sheet = read(render(XlsxWriter, [MEASUREMENTS]))["Data"]
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet["A1"].fill.fgColor.rgb.endswith("DDEBF7")
    assert sheet.freeze_panes == "A2"
    widths = {letter: sheet.column_dimensions[letter].width for letter in "ABCD"}
    assert widths["A"] >= 23  # a datetime with milliseconds
    assert widths["B"] >= len('=HYPERLINK("http://evil")')
    assert widths["D"] >= len("Weight")
    assert all(width <= 60 for width in widths.values())


class SmallSheets(XlsxWriter):
    def __init__(self, sink: BinarySink, document: Document) -> None:
        super().__init__(sink, document, sheet_rows=3)


def test_a_new_sheet_each_time_one_is_full_each_with_its_header() -> None:
    frames = [MEASUREMENTS, MEASUREMENTS.head(3)]  # 7 rows: 3 + 3 + 1
    book = read(render(SmallSheets, frames, layout_for(XlsxWriter)))
    assert book.sheetnames == ["Data", "Data 2", "Data 3"]
    rows = [values(book[name]) for name in book.sheetnames]
    assert [len(sheet) for sheet in rows] == [4, 4, 2]
    assert all(sheet[0] == ("Time", "Device", "Metric, name", "Weight") for sheet in rows)
    assert [row[0] for sheet in rows for row in sheet[1:]] == [*LOCAL, *LOCAL[:3]]


def test_an_empty_export_is_a_header_only_workbook() -> None:
    sheet = read(render(XlsxWriter, []))["Data"]
    assert values(sheet) == [("Time", "Device", "Metric, name", "Weight")]


def test_sheet_size_is_bounded_by_excel() -> None:
    with pytest.raises(ValueError, match="sheet_rows must be between 1 and 1,048,575"):
        XlsxWriter(io.BytesIO(), Document(("a",)), sheet_rows=1_048_576)


def test_any_text_and_number_survives_the_round_trip() -> None:
    texts = [
        "a & b < c > d",
        "  padded  ",
        "bell\x07 and nul\x00",
        "_x0041_ stays literal",
        "tab\tnew\nline",
        "x" * 40_000,
    ]
    frame = pl.DataFrame(
        {
            "text": texts,
            "number": [0.1, float("nan"), float("inf"), -1e-300, 1e20, None],
            "count": [1, -2, 3, None, 2**40, 0],
            "flag": [True, False, None, True, False, True],
        }
    )
    sink = io.BytesIO()
    with XlsxWriter(sink, Document(("Text", "Number", "Count", "Flag"))) as writer:
        writer.write(frame)
    rows = values(read(sink.getvalue())["Data"])[1:]
    assert [excel_text(row[0]) for row in rows] == [*texts[:5], "x" * 32_767]  # Excel's longest text
    assert [row[1] for row in rows] == [0.1, None, None, -1e-300, 1e20, None]  # no cell for NaN, inf
    assert [row[2] for row in rows] == [1, -2, 3, None, 2**40, 0]
    assert [row[3] for row in rows] == [True, False, None, True, False, True]

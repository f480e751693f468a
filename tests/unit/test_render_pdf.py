"""PDF on the fixed data set, its text extracted with pypdf: heading, repeated header, pages, rows."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from pypdf import PdfReader

from exporter.rendering.pdf import PdfWriter
from exporter.rendering.writers import Document, RowLimitExceeded
from tests.render_cases import LOCAL_TIMES, MEASUREMENTS, layout_for, render

HEADING = (
    "Request: Weights of March    Window: 2026-03-01 01:00:00 to 2027-01-01 01:00:00    Timezone: Europe/Rome"
)


def pages(data: bytes) -> list[list[str]]:
    """Each page's text lines, trailing blanks (cell padding) dropped."""
    reader = PdfReader(io.BytesIO(data))
    return [[line.rstrip() for line in page.extract_text().splitlines()] for page in reader.pages]


def test_one_page_report_with_title_heading_header_rows_and_page_number() -> None:
    [page] = pages(render(PdfWriter, [MEASUREMENTS.head(2), MEASUREMENTS.tail(2)]))
    assert page[:2] == ["Scale 7", HEADING]
    header = page[2].split()
    assert header == ["Time", "Device", "Metric,", "name", "Weight"]
    rows = page[3:7]
    assert [row.split()[0] for row in rows] == LOCAL_TIMES
    assert rows[0].split() == [LOCAL_TIMES[0], "dev-1", "weight", "1.5"]
    # Line breaks inside a cell become spaces; text outside Windows-1252 becomes "?".
    assert rows[1].split()[2:] == ["say", '"hi",', "then", "bye", "-2.25"]
    assert rows[2].split()[1:] == ['=HYPERLINK("http://evil")', "@SUM(A1)", "3.0"]
    assert rows[3].split()[1:] == ["dev-2", "Città", "?"]
    assert page[-1] == "Page 1 of 1"


def test_numbers_are_right_aligned_under_their_header() -> None:
    [page] = pages(render(PdfWriter, [MEASUREMENTS]))
    header, first = page[2], page[3]
    assert header.endswith("Weight")
    assert first.endswith("1.5")
    assert len(header) == len(first)


def series(rows: int) -> pl.DataFrame:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return pl.concat([MEASUREMENTS.head(1)] * rows).with_columns(
        time=pl.datetime_range(start, start + timedelta(minutes=rows - 1), "1m", time_zone="UTC", eager=True),
        value=pl.int_range(rows, eager=True).cast(pl.Float64),
    )


def test_long_tables_run_over_pages_each_with_heading_header_and_number() -> None:
    report = pages(render(PdfWriter, [series(50), series(50)]))
    assert len(report) == 3
    for number, page in enumerate(report, start=1):
        assert page[:2] == ["Scale 7", HEADING]
        assert page[2].split() == ["Time", "Device", "Metric,", "name", "Weight"]
        assert page[-1] == f"Page {number} of 3"
    rows = [line for page in report for line in page[3:-1]]
    assert len(rows) == 100
    assert [float(row.split()[-1]) for row in rows] == [float(value) for value in list(range(50)) * 2]


def test_long_text_is_cut_with_an_ellipsis() -> None:
    frame = MEASUREMENTS.head(1).with_columns(name=pl.lit("x" * 100))
    [page] = pages(render(PdfWriter, [frame]))
    assert "x" * 39 + "…" in page[3]
    assert "x" * 41 not in page[3]


def test_an_empty_export_says_so() -> None:
    [page] = pages(render(PdfWriter, []))
    assert page[:2] == ["Scale 7", HEADING]
    assert "No rows in this window." in page
    assert page[-1] == "Page 1 of 1"


class TinyPdf(PdfWriter):
    max_rows = 3


def test_a_pdf_holds_a_bounded_number_of_rows() -> None:
    layout = layout_for(PdfWriter)
    writer = TinyPdf(io.BytesIO(), Document(layout.labels))
    writer.write(layout.shape(MEASUREMENTS.head(3)))
    with pytest.raises(RowLimitExceeded, match="a pdf file holds at most 3 rows"):
        writer.write(layout.shape(MEASUREMENTS.head(1)))


def test_headings_outside_windows_1252_are_printed_with_question_marks() -> None:
    layout = layout_for(PdfWriter)
    sink = io.BytesIO()
    heading = Document(layout.labels, title="Bilancia ☃", request_name="Pesi ✓", timezone="Asia/Tokyo")
    with PdfWriter(sink, heading) as writer:
        writer.write(layout.shape(MEASUREMENTS.head(1)))
    reader = PdfReader(io.BytesIO(sink.getvalue()))
    lines = reader.pages[0].extract_text().splitlines()
    assert lines[:2] == ["Bilancia ?", "Request: Pesi ?    Window: the start to now    Timezone: Asia/Tokyo"]
    assert reader.metadata is not None
    assert reader.metadata.title == "Bilancia ☃"  # the document's properties keep any text

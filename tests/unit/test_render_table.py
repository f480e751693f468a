"""The requested table: columns, order, labels, units, timestamps in the target zone, formula safety."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from exporter.contracts.request import Column, Format
from exporter.rendering.table import Layout, series_unit
from exporter.rendering.writers import CsvWriter, JsonLinesWriter
from exporter.rendering.xlsx import XlsxWriter
from tests.render_cases import COLUMNS, LOCAL_TIMES, MEASUREMENTS, ROME


def test_only_requested_columns_in_order_with_labels_and_local_iso_times() -> None:
    layout = Layout((Column(id="value", label="Temperatura"), Column(id="time", label="Ora")), ROME)
    table = layout.shape(MEASUREMENTS)
    assert table.columns == ["Temperatura", "Ora"]
    assert table["Ora"].to_list() == LOCAL_TIMES
    assert table["Temperatura"].to_list() == [1.5, -2.25, 3.0, None]  # numbers stay numbers


def test_epoch_millis_and_unit_in_the_value_header() -> None:
    fmt = Format(
        extension="csv",
        columns=list(COLUMNS),
        timezone=ROME,
        timestamp_format="EPOCH_MILLIS",
        include_unit=True,
    )
    layout = Layout.of(fmt, CsvWriter, unit=series_unit(MEASUREMENTS))
    assert layout.labels == ("Time", "Device", "Metric, name", "Weight [kg]")
    table = layout.shape(MEASUREMENTS)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    millis = [(moment - epoch) // timedelta(milliseconds=1) for moment in MEASUREMENTS["time"]]
    assert millis[-1] % 1000 == 123
    assert table["Time"].to_list() == millis
    assert table["Weight [kg]"].to_list() == [1.5, -2.25, 3.0, None]


def test_unit_is_left_out_unless_asked_for() -> None:
    fmt = Format(extension="csv", columns=list(COLUMNS))
    assert Layout.of(fmt, CsvWriter, unit="kg").labels[-1] == "Weight"
    assert series_unit(MEASUREMENTS.with_columns(unit=pl.lit(None, pl.String))) is None


def test_spreadsheets_keep_times_as_datetimes_in_the_target_zone() -> None:
    fmt = Format(extension="xlsx", columns=list(COLUMNS), timezone=ROME)
    layout = Layout.of(fmt, XlsxWriter)
    times = layout.shape(MEASUREMENTS)["Time"]
    assert times.dtype == pl.Datetime("us", ROME)
    assert times[0] == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


def test_naive_store_times_are_read_as_utc() -> None:
    naive = MEASUREMENTS.with_columns(pl.col("time").dt.replace_time_zone(None))
    layout = Layout((Column(id="time", label="t"),), ROME)
    assert layout.shape(naive)["t"].to_list() == LOCAL_TIMES


def test_text_that_a_spreadsheet_would_run_is_neutralised_for_csv_only() -> None:
    texts = ['=HYPERLINK("http://x")', "@SUM(A1)", "-2+3", "+1", "\tcmd", "\rcmd", "dev-2", "a=b", ""]
    frame = pl.DataFrame({"publisher": texts})
    column = (Column(id="publisher", label="p"),)
    csv_table = Layout.of(Format(extension="csv", columns=list(column)), CsvWriter).shape(frame)
    quoted = ['\'=HYPERLINK("http://x")', "'@SUM(A1)", "'-2+3", "'+1", "'\tcmd", "'\rcmd"]
    assert csv_table["p"].to_list() == [*quoted, "dev-2", "a=b", ""]
    json_table = Layout.of(Format(extension="jsonl", columns=list(column)), JsonLinesWriter).shape(frame)
    assert json_table["p"].to_list() == texts  # data formats keep the text as it is

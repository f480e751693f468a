"""XLSX (asked for as ``xlsx`` or ``xls``): xlsxwriter in constant-memory mode.

xlsxwriter keeps each sheet's rows in a temporary file and zips the workbook when it is closed, in
a private temporary folder here; the finished file is then copied to the sink. The data rows' XML
is built a frame at a time by polars and appended to xlsxwriter's row file (``append_rows``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from exporter.rendering.sinks import BinarySink
from exporter.rendering.table import FORMULA_START, longest_text, neutralised_labels
from exporter.rendering.writers import Document, TableWriter

# Excel's 1,048,576 rows, less the header row.
EXCEL_DATA_ROWS = 1_048_575
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss.000"
DATE_FORMAT = "yyyy-mm-dd"
# Excel counts days from 1899-12-30; the Unix epoch is day 25,569.
EXCEL_EPOCH_DAY = 25_569.0
MS_PER_DAY = 86_400_000.0
MIN_WIDTH, MAX_WIDTH, DATETIME_WIDTH = 8, 60, 23
COPY_CHUNK = 1 << 20

# The most characters a cell holds.
EXCEL_TEXT_LIMIT = 32_767
# Characters XML cannot hold; Excel (and xlsxwriter) write them as `_xHHHH_`.
_CONTROL_CHARS = [chr(code) for code in (*range(0x00, 0x09), *range(0x0B, 0x20))]


def excel_serial(expression: pl.Expr) -> pl.Expr:
    """Wall-clock datetimes as Excel serial day numbers, computed for a whole column at once."""
    return expression.dt.epoch("ms").cast(pl.Float64) / MS_PER_DAY + EXCEL_EPOCH_DAY


def _number_cell(number: pl.Expr, reference: pl.Expr, style: str) -> pl.Expr:
    return pl.concat_str(
        pl.lit('<c r="'), reference, pl.lit(f'"{style}><v>'), number.cast(pl.String), pl.lit("</v></c>")
    )


def _text_cell(text: pl.Expr, reference: pl.Expr, quoted_style: int) -> pl.Expr:
    """An inline string cell escaped as xlsxwriter escapes it; formula-like text gets a quote prefix."""
    escaped = (
        text.str.slice(0, EXCEL_TEXT_LIMIT)
        .str.replace_all("&", "&amp;", literal=True)
        .str.replace_all("<", "&lt;", literal=True)
        .str.replace_all(">", "&gt;", literal=True)
        .str.replace_all("(_x[0-9a-fA-F]{4}_)", "_x005F$1")
    )
    for char in _CONTROL_CHARS:
        escaped = escaped.str.replace_all(char, f"_x{ord(char):04X}_", literal=True)
    style = (
        pl.when(text.str.contains(FORMULA_START)).then(pl.lit(f' s="{quoted_style}"')).otherwise(pl.lit(""))
    )
    space = pl.when(text.str.contains(r"^\s|\s$")).then(pl.lit(' xml:space="preserve"')).otherwise(pl.lit(""))
    return pl.concat_str(
        pl.lit('<c r="'),
        reference,
        pl.lit('"'),
        style,
        pl.lit(' t="inlineStr"><is><t'),
        space,
        pl.lit(">"),
        escaped,
        pl.lit("</t></is></c>"),
    )


def _cell(name: str, dtype: pl.DataType, reference: pl.Expr, styles: dict[str, int]) -> pl.Expr:
    value = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        cell = _number_cell(
            excel_serial(value.dt.replace_time_zone(None)), reference, f' s="{styles["datetime"]}"'
        )
    elif dtype == pl.Date:
        cell = _number_cell(excel_serial(value.cast(pl.Datetime("ms"))), reference, f' s="{styles["date"]}"')
    elif dtype.is_float():
        finite = pl.when(value.is_finite()).then(value)  # NaN and infinities have no cell value
        cell = _number_cell(finite, reference, "")
    elif dtype.is_numeric():
        cell = _number_cell(value, reference, "")
    elif dtype == pl.Boolean:
        cell = pl.concat_str(
            pl.lit('<c r="'),
            reference,
            pl.lit('" t="b"><v>'),
            value.cast(pl.Int8).cast(pl.String),
            pl.lit("</v></c>"),
        )
    else:
        cell = _text_cell(value.cast(pl.String), reference, styles["quoted"])
    return cell.fill_null("")


def rows_xml(table: pl.DataFrame, first_row: int, styles: dict[str, int]) -> str:
    """The ``<row>`` elements of a frame (its first row at 0-based ``first_row``), built by column."""
    number = (pl.int_range(pl.len()) + first_row + 1).cast(pl.String)
    row_cells = [
        _cell(name, dtype, pl.concat_str(pl.lit(xl_col_to_name(index)), number), styles)
        for index, (name, dtype) in enumerate(table.schema.items())
    ]
    rows = pl.concat_str(pl.lit('<row r="'), number, pl.lit('">'), *row_cells, pl.lit("</row>"))
    return str(table.select(rows.str.join("")).item())


def append_rows(sheet: Any, xml: str, last_row: int, last_column: int) -> None:
    """Appends ready-made ``<row>`` elements to a constant-memory sheet of xlsxwriter 3.3.

    xlsxwriter builds a constant-memory sheet's XML one cell at a time, in Python; polars builds a
    whole frame's in one pass, many times faster. The steps are those of xlsxwriter's own write
    methods: widen the sheet's used range, write out the row it holds (the header) and move its row
    cursor past the new rows, then the rows go to the same temporary file.
    """
    sheet._check_dimensions(last_row, last_column)
    sheet._write_single_row(last_row)
    sheet.fh.write(xml)


class XlsxWriter(TableWriter):
    extension = "xlsx"
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    native_times = True

    def __init__(
        self,
        sink: BinarySink,
        document: Document,
        sheet_rows: int = EXCEL_DATA_ROWS,
        sheet_name: str = "Data",
    ) -> None:
        super().__init__(sink, document)
        if not 1 <= sheet_rows <= EXCEL_DATA_ROWS:
            raise ValueError(f"sheet_rows must be between 1 and {EXCEL_DATA_ROWS:,}")
        self._sheet_rows = sheet_rows
        self._sheet_name = sheet_name
        self._folder = tempfile.TemporaryDirectory(prefix="exporter-xlsx-")
        self._path = Path(self._folder.name) / "book.xlsx"
        self._book = xlsxwriter.Workbook(
            str(self._path),
            {"constant_memory": True, "tmpdir": self._folder.name},
        )
        self._book.set_properties(
            {
                "title": document.title,
                "subject": document.request_name or "",
                "comments": f"{document.window_text} ({document.timezone})",
            }
        )
        header = {"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "valign": "top"}
        self._header_format = self._book.add_format(header)
        # A label that looks like a formula is kept text as a value is (see ``_text_cell``).
        self._quoted_header_format = self._book.add_format({**header, "quote_prefix": True})
        self._formats = {
            "datetime": self._book.add_format({"num_format": DATETIME_FORMAT}),
            "date": self._book.add_format({"num_format": DATE_FORMAT}),
            # Excel's own way to keep text that looks like a formula as text, also once edited.
            "quoted": self._book.add_format({"quote_prefix": True}),
        }
        self._widths = [max(MIN_WIDTH, len(label) + 2) for label in document.labels]
        self._sheets: list[Any] = []
        self._row = 0
        self._add_sheet()

    def _add_sheet(self) -> None:
        number = len(self._sheets) + 1
        sheet = self._book.add_worksheet(self._sheet_name if number == 1 else f"{self._sheet_name} {number}")
        sheet.freeze_panes(1, 0)
        labels = self.document.labels
        for column, (label, quoted) in enumerate(zip(labels, neutralised_labels(labels), strict=True)):
            style = self._header_format if quoted == label else self._quoted_header_format
            sheet.write_string(0, column, label, style)
        self._sheets.append(sheet)
        self._set_widths()
        self._row = 0

    def _set_widths(self) -> None:
        for sheet in self._sheets:
            for column, width in enumerate(self._widths):
                sheet.set_column(column, column, width)

    def _write(self, table: pl.DataFrame) -> None:
        if self.rows == 0:
            self._widen(table)
        offset = 0
        while offset < table.height:
            if self._row == self._sheet_rows:
                self._add_sheet()
            take = min(table.height - offset, self._sheet_rows - self._row)
            self._write_rows(table.slice(offset, take))
            offset += take

    def _write_rows(self, table: pl.DataFrame) -> None:
        styles = {name: cell_format._get_xf_index() for name, cell_format in self._formats.items()}
        xml = rows_xml(table, self._row + 1, styles)
        self._row += table.height
        append_rows(self._sheets[-1], xml, self._row, table.width - 1)

    def _widen(self, table: pl.DataFrame) -> None:
        """Columns as wide as the first frame's longest text (within bounds), for a readable sheet."""
        for column, (name, dtype) in enumerate(table.schema.items()):
            content = DATETIME_WIDTH if isinstance(dtype, pl.Datetime) else longest_text(table[name]) + 2
            self._widths[column] = min(MAX_WIDTH, max(self._widths[column], content))
        self._set_widths()

    def _finish(self) -> None:
        try:
            self._book.close()
            with self._path.open("rb") as book:
                shutil.copyfileobj(book, self._sink, COPY_CHUNK)
        finally:
            self._folder.cleanup()

    def discard(self) -> None:
        self._folder.cleanup()

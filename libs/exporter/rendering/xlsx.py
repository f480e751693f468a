"""XLSX (asked for as ``xlsx`` or ``xls``): xlsxwriter in constant-memory mode, one row in memory at a time.

The workbook is assembled in a private temporary folder (xlsxwriter keeps each sheet's rows in a
temporary file and zips them when closed) and copied to the sink when the file is finished.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter

from exporter.rendering.sinks import BinarySink
from exporter.rendering.table import FORMULA_PREFIXES
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

CellWrite = Callable[[int, int, Any, Any], object]


def excel_serial(expression: pl.Expr) -> pl.Expr:
    """Wall-clock datetimes as Excel serial day numbers, computed for a whole column at once."""
    return expression.dt.epoch("ms").cast(pl.Float64) / MS_PER_DAY + EXCEL_EPOCH_DAY


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
            {"constant_memory": True, "tmpdir": self._folder.name, "nan_inf_to_errors": True},
        )
        self._book.set_properties(
            {
                "title": document.title,
                "subject": document.request_name or "",
                "comments": f"{document.window_text} ({document.timezone})",
            }
        )
        self._header_format = self._book.add_format(
            {"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "valign": "top"}
        )
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
        for column, label in enumerate(self.document.labels):
            sheet.write_string(0, column, label, self._header_format)
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
        cells = table.with_columns(
            excel_serial(pl.col(name).dt.replace_time_zone(None))
            for name, dtype in table.schema.items()
            if isinstance(dtype, pl.Datetime)
        ).with_columns(
            excel_serial(pl.col(name).cast(pl.Datetime("ms")))
            for name, dtype in table.schema.items()
            if dtype == pl.Date
        )
        offset = 0
        while offset < cells.height:
            if self._row == self._sheet_rows:
                self._add_sheet()
            take = min(cells.height - offset, self._sheet_rows - self._row)
            self._write_rows(cells.slice(offset, take), table.dtypes)
            offset += take

    def _write_rows(self, cells: pl.DataFrame, dtypes: list[pl.DataType]) -> None:
        sheet = self._sheets[-1]
        plan = [self._cell_plan(sheet, dtype) for dtype in dtypes]
        quoted = self._formats["quoted"]
        row = self._row
        for values in cells.iter_rows():
            row += 1
            for column, value in enumerate(values):
                if value is None:
                    continue
                write, cell_format, text = plan[column]
                if text and value.startswith(FORMULA_PREFIXES):
                    write(row, column, value, quoted)
                else:
                    write(row, column, value, cell_format)
        self._row = row

    def _cell_plan(self, sheet: Any, dtype: pl.DataType) -> tuple[CellWrite, Any, bool]:
        if isinstance(dtype, pl.Datetime):
            return sheet.write_number, self._formats["datetime"], False
        if dtype == pl.Date:
            return sheet.write_number, self._formats["date"], False
        if dtype.is_numeric():
            return sheet.write_number, None, False
        if dtype == pl.Boolean:
            return sheet.write_boolean, None, False
        if dtype == pl.String:
            return sheet.write_string, None, True
        return (
            lambda row, column, value, cell_format: sheet.write_string(row, column, str(value)),
            None,
            False,
        )

    def _widen(self, table: pl.DataFrame) -> None:
        """Columns as wide as the first frame's longest text (within bounds), for a readable sheet."""
        for column, (name, dtype) in enumerate(table.schema.items()):
            if isinstance(dtype, pl.Datetime):
                content = DATETIME_WIDTH
            else:
                lengths = table[name].cast(pl.String).str.len_chars()
                content = int(lengths.max() or 0) + 2  # type: ignore[arg-type]
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

"""Table writers: a table in frames in, a file's bytes out to a sink, in memory bounded by one frame.

Every writer takes frames already shaped by a ``Layout`` (labelled columns, times as text, epoch
milliseconds, or datetimes in the target zone for spreadsheets) and writes its header when opened,
so an empty export still is a well-formed file.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import ClassVar, Self
from zoneinfo import ZoneInfo

import polars as pl

from exporter.rendering.sinks import BinarySink, as_io
from exporter.rendering.table import neutralised_labels


@dataclass(frozen=True)
class Document:
    """What a file is about: its column labels and, for reports, a title and the window of its data."""

    labels: tuple[str, ...]
    title: str = "Export"
    request_name: str | None = None
    window_from: datetime | None = None
    window_to: datetime | None = None
    timezone: str = "UTC"

    @property
    def window_text(self) -> str:
        """The window in the document's timezone, for a heading: ``2026-03-01 00:00:00 to now``."""
        zone = ZoneInfo(self.timezone)

        def moment(value: datetime | None, open_end: str) -> str:
            return open_end if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

        return f"{moment(self.window_from, 'the start')} to {moment(self.window_to, 'now')}"


class RowLimitExceeded(ValueError):
    """A file format that cannot hold more rows was given more (split the export into parts)."""


class TableWriter(ABC):
    extension: ClassVar[str]
    content_type: ClassVar[str]
    # What the layout must hand over: datetimes rather than text, formulas already quoted.
    native_times: ClassVar[bool] = False
    neutralises_formulas: ClassVar[bool] = False
    # The most rows one file may hold, when the format keeps the whole file in memory until closed.
    max_rows: ClassVar[int | None] = None

    def __init__(self, sink: BinarySink, document: Document) -> None:
        self._sink = sink
        self.document = document
        self.rows = 0

    def write(self, table: pl.DataFrame) -> None:
        if self.max_rows is not None and self.rows + table.height > self.max_rows:
            raise RowLimitExceeded(
                f"a {self.extension} file holds at most {self.max_rows:,} rows; "
                "split the export into parts or choose another format"
            )
        if table.height:
            self._write(table)
            self.rows += table.height

    def close(self) -> None:
        """Finishes the file; the sink stays open for its owner."""
        self._finish()

    def discard(self) -> None:  # noqa: B027 - a hook: only writers holding temporary files need it
        """Gives up an unfinished file, freeing what it held; the sink holds a partial file."""

    @abstractmethod
    def _write(self, table: pl.DataFrame) -> None: ...

    @abstractmethod
    def _finish(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if error is None:
            self.close()
        else:
            self.discard()


class CsvWriter(TableWriter):
    """RFC 4180: UTF-8, CRLF line ends, quotes only where needed, one header line from the labels."""

    extension = "csv"
    content_type = "text/csv; charset=utf-8"
    neutralises_formulas = True

    def __init__(self, sink: BinarySink, document: Document) -> None:
        super().__init__(sink, document)
        header = pl.DataFrame(schema=dict.fromkeys(neutralised_labels(document.labels), pl.String))
        self._write_csv(header, include_header=True)

    def _write(self, table: pl.DataFrame) -> None:
        self._write_csv(table, include_header=False)

    def _write_csv(self, table: pl.DataFrame, include_header: bool) -> None:
        table.write_csv(as_io(self._sink), include_header=include_header, line_terminator="\r\n")

    def _finish(self) -> None:
        pass


class JsonLinesWriter(TableWriter):
    """One JSON object per line, keys from the labels (seed 003's entity exports)."""

    extension = "jsonl"
    content_type = "application/x-ndjson"

    def _write(self, table: pl.DataFrame) -> None:
        table.write_ndjson(as_io(self._sink))

    def _finish(self) -> None:
        pass


class DocumentLinesWriter(TableWriter):
    """Whole documents, each already JSON text, one per line: entity exports (seed 003).

    Documents of any shape go through unchanged; a table of one text column carries them.
    """

    extension = "jsonl"
    content_type = "application/x-ndjson"

    def _write(self, table: pl.DataFrame) -> None:
        self._sink.write(table.to_series().str.join("\n").item().encode() + b"\n")

    def _finish(self) -> None:
        pass


class JsonWriter(TableWriter):
    """One JSON array of objects, streamed: JSON Lines joined with commas between brackets."""

    extension = "json"
    content_type = "application/json"

    def __init__(self, sink: BinarySink, document: Document) -> None:
        super().__init__(sink, document)
        self._sink.write(b"[\n")

    def _write(self, table: pl.DataFrame) -> None:
        buffer = io.BytesIO()
        table.write_ndjson(buffer)
        # JSON text never holds a raw newline, so every newline ends an object.
        objects = buffer.getvalue().rstrip(b"\n").replace(b"\n", b",\n")
        self._sink.write(b",\n" + objects if self.rows else objects)

    def _finish(self) -> None:
        self._sink.write(b"\n]\n" if self.rows else b"]\n")

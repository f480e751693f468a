"""File writers that take a table in frames, so a file of any size is written in bounded memory."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol

import polars as pl


class TableWriter(Protocol):
    extension: str
    content_type: str

    def write(self, frame: pl.DataFrame) -> None: ...

    def close(self) -> None: ...


class CsvWriter:
    """RFC 4180, UTF-8, one header line from the column labels."""

    extension = "csv"
    content_type = "text/csv; charset=utf-8"

    def __init__(self, path: Path, labels: list[str]) -> None:
        self._file: BinaryIO = path.open("wb")
        self._labels = labels
        self._header_written = False

    def write(self, frame: pl.DataFrame) -> None:
        frame.write_csv(self._file, include_header=not self._header_written, line_terminator="\r\n")
        self._header_written = True

    def close(self) -> None:
        if not self._header_written:
            self.write(pl.DataFrame({label: [] for label in self._labels}))
        self._file.close()

    def __enter__(self) -> CsvWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

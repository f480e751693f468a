"""Files out of tables: a format's writer over optional compression, measured, split into parts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import polars as pl

from exporter.contracts.request import Compression, Extension, Format
from exporter.rendering.names import FileNamer
from exporter.rendering.pdf import PdfWriter
from exporter.rendering.sinks import (
    COMPRESSION_CONTENT_TYPES,
    COMPRESSION_SUFFIXES,
    BinarySink,
    MeasuredSink,
    compressed,
)
from exporter.rendering.writers import CsvWriter, Document, JsonLinesWriter, JsonWriter, TableWriter
from exporter.rendering.xlsx import XlsxWriter

# `xls` asks for a spreadsheet: it gets today's format, named for what it is.
WRITERS: dict[Extension, type[TableWriter]] = {
    "csv": CsvWriter,
    "xls": XlsxWriter,
    "xlsx": XlsxWriter,
    "pdf": PdfWriter,
    "json": JsonWriter,
    "jsonl": JsonLinesWriter,
}

OpenSink = Callable[[str], AbstractContextManager[BinarySink]]


@dataclass(frozen=True)
class FileFormat:
    writer: type[TableWriter]
    compression: Compression | None = None

    @classmethod
    def of(cls, fmt: Format) -> FileFormat:
        return cls(WRITERS[fmt.extension], fmt.compression)

    @property
    def suffix(self) -> str:
        """The file name's extension: ``csv``, ``xlsx``, ``jsonl.zst`` …"""
        if self.compression is None:
            return self.writer.extension
        return f"{self.writer.extension}.{COMPRESSION_SUFFIXES[self.compression]}"

    @property
    def content_type(self) -> str:
        if self.compression is None:
            return self.writer.content_type
        return COMPRESSION_CONTENT_TYPES[self.compression]


@dataclass(frozen=True)
class RenderedFile:
    name: str
    rows: int
    size_in_bytes: int
    sha256: str
    content_type: str


class _Finishing(ABC):
    """``with`` guard for writers finished by an explicit ``close()`` that returns their files:
    leaving the block before that (an error, a cancellation) discards what was started."""

    closed = False

    @abstractmethod
    def discard(self, error: BaseException | None = None) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if not self.closed:
            self.discard(error)


class FileWriter(_Finishing):
    """One file: the format's table writer, over compression, over a sink that counts and hashes."""

    def __init__(self, name: str, sink: BinarySink, file_format: FileFormat, document: Document) -> None:
        self.name = name
        self._format = file_format
        self._measured = MeasuredSink(sink)
        self._stack = ExitStack()
        inner = self._stack.enter_context(compressed(self._measured, file_format.compression))
        self._writer = file_format.writer(inner, document)

    @property
    def rows(self) -> int:
        return self._writer.rows

    @property
    def size_in_bytes(self) -> int:
        """Bytes out so far (a compressor or an XLSX/PDF document may still hold some back)."""
        return self._measured.size

    def write(self, table: pl.DataFrame) -> None:
        self._writer.write(table)

    def close(self) -> RenderedFile:
        self._writer.close()
        self._stack.close()
        self.closed = True
        return RenderedFile(
            name=self.name,
            rows=self._writer.rows,
            size_in_bytes=self._measured.size,
            sha256=self._measured.sha256,
            content_type=self._format.content_type,
        )

    def discard(self, error: BaseException | None = None) -> None:
        self._writer.discard()
        self._stack.close()
        self.closed = True


@dataclass(frozen=True)
class SplitLimits:
    """When a file becomes numbered parts (seed 003 lists several files): ``None`` is no limit.

    Rows split exactly; bytes are checked between frames, against what has reached the sink, so a
    part ends up to a frame above the limit, and XLSX and PDF (written when finished) split by rows.
    """

    rows: int | None = None
    size_in_bytes: int | None = None

    def __post_init__(self) -> None:
        for name, limit in (("rows", self.rows), ("size_in_bytes", self.size_in_bytes)):
            if limit is not None and limit < 1:
                raise ValueError(f"split limit '{name}' must be at least 1, not {limit}")

    @property
    def enabled(self) -> bool:
        return self.rows is not None or self.size_in_bytes is not None


class Unfinished(Exception):
    """What an unfinished part's sink is left with when its writer was left without an error."""


class PartWriter(_Finishing):
    """One table as one file, or, with limits, as parts ``name-part-001.csv``, ``-002`` …

    Each part's sink comes from ``open_sink(name)``, entered when the part starts and left when
    it is finished; a part never finished leaves its sink with an error (the rendering's, or
    ``Unfinished``), so an upload can be aborted rather than completed.
    With limits every part is numbered, the first too: its name is needed before its size is known.
    """

    _part_sink: ExitStack

    def __init__(
        self,
        name: str,
        open_sink: OpenSink,
        file_format: FileFormat,
        document: Document,
        namer: FileNamer,
        limits: SplitLimits | None = None,
    ) -> None:
        self.name = name
        self.files: list[RenderedFile] = []
        self._open_sink = open_sink
        self._format = file_format
        self._document = document
        self._namer = namer
        self._limits = limits or SplitLimits()
        self._rows_per_part = self._row_limit()
        self._current = self._start()

    def _row_limit(self) -> int | None:
        """The rows a part may hold: the limit's, never more than the format can keep (PDF)."""
        limits = [self._limits.rows, self._format.writer.max_rows if self._limits.enabled else None]
        return min((limit for limit in limits if limit is not None), default=None)

    def _start(self) -> FileWriter:
        number = len(self.files) + 1
        name = self._namer.part(self.name, number) if self._limits.enabled else self.name
        self._part_sink = ExitStack()
        sink = self._part_sink.enter_context(self._open_sink(name))
        try:
            return FileWriter(name, sink, self._format, self._document)
        except BaseException as error:
            self._abort_sink(error)
            raise

    def _full(self) -> bool:
        current, limits = self._current, self._limits
        by_rows = self._rows_per_part is not None and current.rows >= self._rows_per_part
        by_size = limits.size_in_bytes is not None and current.size_in_bytes >= limits.size_in_bytes
        return by_rows or by_size

    def write(self, table: pl.DataFrame) -> None:
        offset = 0
        while offset < table.height:
            if self._full():
                self._finish_part()
                self._current = self._start()
            room = table.height - offset
            if self._rows_per_part is not None:
                room = min(room, self._rows_per_part - self._current.rows)
            self._current.write(table.slice(offset, room))
            offset += room

    @property
    def rows(self) -> int:
        return sum(file.rows for file in self.files) + self._current.rows

    def _finish_part(self) -> None:
        self.files.append(self._current.close())
        self._part_sink.close()

    def close(self) -> list[RenderedFile]:
        self._finish_part()
        self.closed = True
        return self.files

    def discard(self, error: BaseException | None = None) -> None:
        """Abandons the part being written; its sink is left with ``error``."""
        self._current.discard()
        self._abort_sink(error or Unfinished(f"{self._current.name} was left unfinished"))
        self.closed = True

    def _abort_sink(self, error: BaseException) -> None:
        self._part_sink.__exit__(type(error), error, error.__traceback__)

"""One zip of all a job's files, streamed: entries go out as they are written, nothing is seeked."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from exporter.rendering.output import RenderedFile
from exporter.rendering.sinks import BinarySink, MeasuredSink, as_io

CONTENT_TYPE = "application/zip"
# Already compressed inside: deflating them again costs time and saves nothing.
STORED_SUFFIXES = (".gz", ".zst", ".xlsx", ".zip")
EARLIEST_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class ZipArchive:
    """Entries written one after another, each streamed (zip64, so any size will do).

    ``modified`` is every entry's time (the job's scheduled time, say): the same job zips to the
    same bytes.
    """

    def __init__(self, name: str, sink: BinarySink, modified: datetime | None = None) -> None:
        self.name = name
        self._measured = MeasuredSink(sink)
        # A sink without tell() is written as a stream: sizes and CRCs follow each entry.
        self._zip = zipfile.ZipFile(as_io(self._measured), "w", compression=zipfile.ZIP_DEFLATED)
        self._time = EARLIEST_ZIP_TIME if modified is None else modified.timetuple()[:6]
        self.entries: list[str] = []

    @contextmanager
    def entry(self, name: str) -> Iterator[BinarySink]:
        info = zipfile.ZipInfo(name, date_time=self._time)
        info.compress_type = zipfile.ZIP_STORED if name.endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
        with self._zip.open(info, "w", force_zip64=True) as entry:
            yield entry
        self.entries.append(name)

    def add(self, name: str, chunks: Iterable[bytes]) -> None:
        with self.entry(name) as entry:
            for chunk in chunks:
                entry.write(chunk)

    def close(self, rows: int = 0) -> RenderedFile:
        """Writes the zip's directory; ``rows`` are those of its files, which only the caller knows."""
        self._zip.close()
        return RenderedFile(
            name=self.name,
            rows=rows,
            size_in_bytes=self._measured.size,
            sha256=self._measured.sha256,
            content_type=CONTENT_TYPE,
        )

"""Where rendered bytes go: any object with ``write(bytes)``, so a file or a multipart upload will do.

Writers never close the sink they are given: its owner decides when an upload is complete.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Protocol, cast

import zstandard

from exporter.contracts.request import Compression

GZIP_LEVEL = 6
ZSTD_LEVEL = 3

COMPRESSION_SUFFIXES: dict[Compression, str] = {"gzip": "gz", "zstd": "zst"}
COMPRESSION_CONTENT_TYPES: dict[Compression, str] = {"gzip": "application/gzip", "zstd": "application/zstd"}


class BinarySink(Protocol):
    """Takes bytes and says how many it took, as files do (polars insists on the count)."""

    def write(self, data: bytes, /) -> int: ...


def as_io(sink: BinarySink) -> IO[bytes]:
    """For libraries typed for files that only ever call ``write`` on them (polars, gzip, zstandard)."""
    return cast("IO[bytes]", sink)


class MeasuredSink:
    """Counts and hashes what passes through, so a streamed file's size and checksum need no re-read."""

    def __init__(self, sink: BinarySink) -> None:
        self._sink = sink
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self._sink.write(data)
        self._digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        flush = getattr(self._sink, "flush", None)
        if flush is not None:
            flush()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


class TeeSink:
    """The same bytes to several sinks: an object upload and a zip entry, say."""

    def __init__(self, *sinks: BinarySink) -> None:
        self._sinks = sinks

    def write(self, data: bytes, /) -> int:
        for sink in self._sinks:
            sink.write(data)
        return len(data)


@contextmanager
def compressed(sink: BinarySink, compression: Compression | None) -> Iterator[BinarySink]:
    """A sink that compresses into ``sink``; leaving the block writes the trailer, ``sink`` stays open.

    Output is deterministic (no timestamp, no name in the gzip header), so a job rendered twice
    produces the same bytes and the same checksum.
    """
    if compression is None:
        yield sink
    elif compression == "gzip":
        # GzipFile only needs write() from its fileobj.
        target = as_io(sink)
        with gzip.GzipFile(filename="", mode="wb", fileobj=target, compresslevel=GZIP_LEVEL, mtime=0) as file:
            yield file
    else:
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
        with compressor.stream_writer(as_io(sink), closefd=False) as writer:
            yield writer

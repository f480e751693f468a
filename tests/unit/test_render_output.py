"""Files and parts: splitting by rows or bytes into numbered parts, a zip of them all, failures."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import polars as pl
import pytest
from pypdf import PdfReader

from exporter.contracts.request import Format
from exporter.rendering.archive import ZipArchive
from exporter.rendering.names import FileNamer
from exporter.rendering.output import FileFormat, OpenSink, PartWriter, RenderedFile, SplitLimits
from exporter.rendering.pdf import PdfWriter
from exporter.rendering.sinks import BinarySink, TeeSink
from exporter.rendering.writers import CsvWriter, RowLimitExceeded, TableWriter
from tests.render_cases import MEASUREMENTS, document, layout_for

TEN = pl.concat([MEASUREMENTS] * 3).head(10)


class Store:
    """Sinks by name, and how each was left: finished, or with which error."""

    def __init__(self) -> None:
        self.files: dict[str, io.BytesIO] = {}
        self.outcomes: dict[str, str] = {}

    @contextmanager
    def open(self, name: str) -> Iterator[BinarySink]:
        self.files[name] = io.BytesIO()
        try:
            yield self.files[name]
        except BaseException as error:
            self.outcomes[name] = f"aborted: {error}"
            raise
        self.outcomes[name] = "finished"


def part_writer(
    open_sink: OpenSink, limits: SplitLimits | None = None, writer: type[TableWriter] = CsvWriter
) -> PartWriter:
    namer = FileNamer(writer.extension)
    name = namer.name("weights", {}, "export-1")
    return PartWriter(name, open_sink, FileFormat(writer), document(layout_for(writer)), namer, limits)


def write_parts(
    writer: type[TableWriter], limits: SplitLimits | None, frames: list[pl.DataFrame], store: Store
) -> list[RenderedFile]:
    layout = layout_for(writer)
    with part_writer(store.open, limits, writer) as parts:
        for frame in frames:
            parts.write(layout.shape(frame))
        assert parts.rows == sum(frame.height for frame in frames)
        return parts.close()


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def test_without_limits_one_file_keeps_its_name() -> None:
    store = Store()
    [file] = write_parts(CsvWriter, None, [TEN, TEN], store)
    assert (file.name, file.rows) == ("weights.csv", 20)
    assert store.outcomes == {"weights.csv": "finished"}
    assert len(csv_rows(store.files["weights.csv"].getvalue())) == 21


def test_a_row_limit_splits_exactly_into_numbered_parts_each_with_a_header() -> None:
    store = Store()
    files = write_parts(CsvWriter, SplitLimits(rows=4), [TEN.head(3), TEN.tail(7)], store)
    names = ["weights-part-001.csv", "weights-part-002.csv", "weights-part-003.csv"]
    assert [(file.name, file.rows) for file in files] == list(zip(names, [4, 4, 2], strict=True))
    assert store.outcomes == dict.fromkeys(names, "finished")
    parts = [csv_rows(store.files[name].getvalue()) for name in names]
    assert all(part[0] == ["Time", "Device", "Metric, name", "Weight"] for part in parts)
    whole = [row for part in parts for row in part[1:]]
    assert whole == csv_rows(write_whole(TEN))[1:]
    for file in files:
        data = store.files[file.name].getvalue()
        assert (file.size_in_bytes, file.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert file.content_type == "text/csv; charset=utf-8"


def write_whole(frame: pl.DataFrame) -> bytes:
    store = Store()
    write_parts(CsvWriter, None, [frame], store)
    return store.files["weights.csv"].getvalue()


def test_a_size_limit_starts_a_new_part_once_a_part_reaches_it() -> None:
    store = Store()
    frames = [TEN.slice(offset, 2) for offset in range(0, 10, 2)]
    files = write_parts(CsvWriter, SplitLimits(size_in_bytes=300), frames, store)
    assert len(files) > 1
    assert all(file.size_in_bytes >= 300 for file in files[:-1])
    assert all(file.rows % 2 == 0 for file in files)  # checked between frames: frames stay whole
    rows = [row for file in files for row in csv_rows(store.files[file.name].getvalue())[1:]]
    assert rows == csv_rows(write_whole(TEN))[1:]


def test_a_limit_exactly_met_opens_no_empty_part() -> None:
    store = Store()
    files = write_parts(CsvWriter, SplitLimits(rows=5), [TEN], store)
    assert [file.rows for file in files] == [5, 5]


def test_splitting_keeps_pdf_parts_within_what_a_pdf_may_hold() -> None:
    class TinyPdf(PdfWriter):
        max_rows = 3

    store = Store()
    files = write_parts(
        TinyPdf, SplitLimits(size_in_bytes=10**9), [MEASUREMENTS, MEASUREMENTS.head(1)], store
    )
    assert [file.rows for file in files] == [3, 2]
    assert [len(PdfReader(store.files[file.name]).pages) for file in files] == [1, 1]
    with pytest.raises(RowLimitExceeded):
        write_parts(TinyPdf, None, [MEASUREMENTS], Store())


def fail_midway(parts: PartWriter) -> None:
    with parts:
        parts.write(layout_for(CsvWriter).shape(TEN.head(6)))
        raise RuntimeError("database went away")


def test_a_failure_leaves_the_finished_parts_and_aborts_the_open_one() -> None:
    store = Store()
    parts = part_writer(store.open, SplitLimits(rows=4))
    with pytest.raises(RuntimeError, match="database went away"):
        fail_midway(parts)
    assert store.outcomes == {
        "weights-part-001.csv": "finished",
        "weights-part-002.csv": "aborted: database went away",
    }
    assert [file.rows for file in parts.files] == [4]


def test_a_part_left_unfinished_is_aborted_not_completed() -> None:
    store = Store()
    with part_writer(store.open) as parts:
        parts.write(layout_for(CsvWriter).shape(TEN))
    assert store.outcomes == {"weights.csv": "aborted: weights.csv was left unfinished"}


def test_split_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="split limit 'rows' must be at least 1, not 0"):
        SplitLimits(rows=0)


def test_the_format_names_the_writer_suffix_and_content_type() -> None:
    xls = FileFormat.of(Format(extension="xls", compression="gzip"))
    assert (xls.writer.extension, xls.suffix, xls.content_type) == ("xlsx", "xlsx.gz", "application/gzip")
    pdf = FileFormat.of(Format(extension="pdf"))
    assert (pdf.suffix, pdf.content_type) == ("pdf", "application/pdf")


def test_a_zip_holds_every_file_of_the_job_as_it_is_written() -> None:
    store, archive_sink = Store(), io.BytesIO()
    archive = ZipArchive("job.zip", archive_sink, modified=datetime(2026, 4, 1, 12, tzinfo=UTC))

    @contextmanager
    def upload_and_zip(name: str) -> Iterator[BinarySink]:
        with store.open(name) as upload, archive.entry(name) as entry:
            yield TeeSink(upload, entry)

    with part_writer(upload_and_zip, SplitLimits(rows=6)) as parts:
        parts.write(layout_for(CsvWriter).shape(TEN))
        files = parts.close()
    archive.add("README.txt", [b"two ", b"parts"])
    zipped = archive.close(rows=10)
    data = archive_sink.getvalue()
    assert (zipped.name, zipped.rows, zipped.size_in_bytes) == ("job.zip", 10, len(data))
    assert zipped.sha256 == hashlib.sha256(data).hexdigest()
    assert zipped.content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(data)) as reread:
        assert reread.testzip() is None
        assert reread.namelist() == ["weights-part-001.csv", "weights-part-002.csv", "README.txt"]
        for file in files:
            assert reread.read(file.name) == store.files[file.name].getvalue()
            assert reread.getinfo(file.name).compress_type == zipfile.ZIP_DEFLATED
            assert reread.getinfo(file.name).date_time == (2026, 4, 1, 12, 0, 0)
        assert reread.read("README.txt") == b"two parts"


def test_already_compressed_files_are_stored_as_they_are() -> None:
    sink = io.BytesIO()
    archive = ZipArchive("job.zip", sink)
    archive.add("a.csv.gz", [b"\x1f\x8b..."])
    archive.add("b.xlsx", [b"PK..."])
    archive.close()
    with zipfile.ZipFile(io.BytesIO(sink.getvalue())) as reread:
        assert {info.compress_type for info in reread.infolist()} == {zipfile.ZIP_STORED}

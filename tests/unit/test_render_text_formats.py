"""CSV, JSON and JSON Lines on the fixed data set: parsed back, byte for byte where it matters."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json

import pytest
import zstandard

from exporter.contracts.request import Compression
from exporter.rendering.output import FileFormat, FileWriter
from exporter.rendering.writers import CsvWriter, JsonLinesWriter, JsonWriter
from tests.render_cases import LOCAL_TIMES, MEASUREMENTS, document, layout_for, render

HEADER = ["Time", "Device", "Metric, name", "Weight"]
ROWS = [
    [LOCAL_TIMES[0], "dev-1", "weight", "1.5"],
    [LOCAL_TIMES[1], "dev-1", 'say "hi", then\nbye', "-2.25"],
    [LOCAL_TIMES[2], '\'=HYPERLINK("http://evil")', "'@SUM(A1)", "3.0"],
    [LOCAL_TIMES[3], "dev-2", "Città ☃", ""],
]
OBJECTS = [
    {"Time": LOCAL_TIMES[0], "Device": "dev-1", "Metric, name": "weight", "Weight": 1.5},
    {"Time": LOCAL_TIMES[1], "Device": "dev-1", "Metric, name": 'say "hi", then\nbye', "Weight": -2.25},
    {
        "Time": LOCAL_TIMES[2],
        "Device": '=HYPERLINK("http://evil")',
        "Metric, name": "@SUM(A1)",
        "Weight": 3.0,
    },
    {"Time": LOCAL_TIMES[3], "Device": "dev-2", "Metric, name": "Città ☃", "Weight": None},
]
FRAMES = [MEASUREMENTS.head(1), MEASUREMENTS.slice(1, 2), MEASUREMENTS.tail(1)]


def test_csv_is_rfc4180_utf8_crlf_with_one_header_across_frames() -> None:
    raw = render(CsvWriter, FRAMES)
    assert raw.startswith(b'Time,Device,"Metric, name",Weight\r\n')
    assert raw.endswith(b"Citt\xc3\xa0 \xe2\x98\x83,\r\n")
    assert raw.count(b"\r\n") == 5  # the newline inside the quoted cell is data, not a record end
    assert list(csv.reader(io.StringIO(raw.decode("utf-8"), newline=""))) == [HEADER, *ROWS]


def test_empty_csv_still_has_its_header() -> None:
    assert render(CsvWriter, []) == b'Time,Device,"Metric, name",Weight\r\n'


def test_json_is_one_array_of_objects_across_frames() -> None:
    raw = render(JsonWriter, FRAMES)
    assert json.loads(raw) == OBJECTS
    assert json.loads(render(JsonWriter, [])) == []
    assert json.loads(render(JsonWriter, [MEASUREMENTS.clear(), MEASUREMENTS.head(1)])) == OBJECTS[:1]


def test_json_lines_are_one_object_per_line() -> None:
    raw = render(JsonLinesWriter, FRAMES)
    lines = raw.decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == OBJECTS
    assert render(JsonLinesWriter, []) == b""


def decompress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip.decompress(data)
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_files_round_trip_and_are_measured_as_stored(compression: Compression) -> None:
    file_format = FileFormat(CsvWriter, compression)
    assert file_format.suffix == {"gzip": "csv.gz", "zstd": "csv.zst"}[compression]
    assert file_format.content_type == {"gzip": "application/gzip", "zstd": "application/zstd"}[compression]
    layout, sink = layout_for(CsvWriter), io.BytesIO()
    with FileWriter("w.csv", sink, file_format, document(layout)) as writer:
        for frame in FRAMES:
            writer.write(layout.shape(frame))
        rendered = writer.close()
    stored = sink.getvalue()
    assert decompress(stored, compression) == render(CsvWriter, FRAMES)
    assert (rendered.name, rendered.rows, rendered.size_in_bytes) == ("w.csv", 4, len(stored))
    assert rendered.sha256 == hashlib.sha256(stored).hexdigest()

"""Golden tests of the renderer through its real path: a fixed data set in the store, a job handled
as a delivery of ``export.requested`` would be, and the files read back from the object store and
parsed with independent readers (csv, json, openpyxl, pypdf, zipfile, gzip, zstandard)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import zipfile
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from statistics import fmean
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import zstandard
from pypdf import PdfReader

from exporter.domain.job_life import JobStatus
from exporter.runtime import Runtime
from tests.integration.renderer_support import (
    DEVICE,
    ROME,
    URN,
    body,
    configure,
    job_spec,
    measurement,
    render,
    series_item,
    store,
)

pytestmark = pytest.mark.servers
ZONE = ZoneInfo(ROME)
# Every 10 minutes across the night Rome moves to summer time (01:00 UTC: 02:00 CET → 03:00 CEST).
START = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
WEIGHTS = [
    (START + timedelta(minutes=10 * i), round(50 + (i % 7) * 1.25 - (i % 3) * 0.5, 2)) for i in range(36)
]
END = START + timedelta(hours=6)
# Text a spreadsheet would run as a formula, and text it would not.
STATUSES = ["=1+2", "+SUM(A1)", "-3", "@cmd", "\tindent", "ok, fine"]
COLUMNS = [
    {"id": "time", "label": "Time"},
    {"id": "publisher", "label": "Device"},
    {"id": "name", "label": "Metric"},
    {"id": "value", "label": "Weight"},
]


def local_iso(moment: datetime) -> str:
    local = moment.astimezone(ZONE)
    return local.isoformat(timespec="milliseconds")


@pytest.fixture
async def tenant(runtime: Runtime) -> str:
    name = "acme"
    await store(runtime, [measurement(name, "weight", moment, value, "kg") for moment, value in WEIGHTS])
    await store(
        runtime,
        [measurement(name, "status", START + timedelta(minutes=i), text) for i, text in enumerate(STATUSES)],
    )
    await store(
        runtime, [measurement(name, "door", START + timedelta(minutes=i), i % 2 == 0) for i in range(4)]
    )
    return name


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


async def test_csv_has_labels_unit_and_local_times(runtime: Runtime, tenant: str) -> None:
    spec = job_spec(
        tenant, body("csv", [series_item("weight", START, END)], columns=COLUMNS, includeUnit=True)
    )
    outcome = await render(runtime, spec)

    assert outcome.result.status is JobStatus.DONE, outcome.result.error
    [name] = outcome.objects
    rows = csv_rows(outcome.objects[name])
    assert rows[0] == ["Time", "Device", "Metric", "Weight [kg]"]
    assert rows[1:] == [[local_iso(moment), DEVICE, "weight", str(value)] for moment, value in WEIGHTS]
    # Across the change: 01:50 CET is followed by 03:00 CEST.
    assert [rows[i][0] for i in (18, 19)] == [
        "2026-03-29T01:50:00.000+01:00",
        "2026-03-29T03:00:00.000+02:00",
    ]
    file = outcome.file(name)
    assert (file.rows, file.size_in_bytes) == (len(WEIGHTS), len(outcome.objects[name]))
    assert file.checksum == f"sha256:{hashlib.sha256(outcome.objects[name]).hexdigest()}"
    assert outcome.job.progress.rows == outcome.result.row_count == len(WEIGHTS)


def status_item() -> dict[str, Any]:
    return series_item("status", START, END)


async def test_csv_neutralises_formulas(runtime: Runtime, tenant: str) -> None:
    columns = [{"id": "name", "label": "Metric"}, {"id": "value", "label": "State"}]
    outcome = await render(runtime, job_spec(tenant, body("csv", [status_item()], columns=columns)))

    [content] = outcome.objects.values()
    assert csv_rows(content)[1:] == [
        ["status", "'=1+2"],
        ["status", "'+SUM(A1)"],
        ["status", "'-3"],
        ["status", "'@cmd"],
        ["status", "'\tindent"],
        ["status", "ok, fine"],
    ]


async def test_json_and_jsonl_with_compression(runtime: Runtime, tenant: str) -> None:
    expected = [
        {"Time": local_iso(moment), "Device": DEVICE, "Metric": "weight", "Weight": value}
        for moment, value in WEIGHTS
    ]
    item = [series_item("weight", START, END)]
    as_json = await render(runtime, job_spec(tenant, body("json", item, columns=COLUMNS)))
    as_lines = await render(
        runtime, job_spec(tenant, body("jsonl", item, columns=COLUMNS, compression="gzip"))
    )
    as_zstd = await render(runtime, job_spec(tenant, body("json", item, columns=COLUMNS, compression="zstd")))

    [(json_name, json_bytes)] = as_json.objects.items()
    assert json_name.endswith(".json")
    assert json.loads(json_bytes) == expected
    [(lines_name, lines_bytes)] = as_lines.objects.items()
    assert lines_name.endswith(".jsonl.gz")
    assert as_lines.file(lines_name).content_type == "application/gzip"
    assert [json.loads(line) for line in gzip.decompress(lines_bytes).splitlines()] == expected
    [(zstd_name, zstd_bytes)] = as_zstd.objects.items()
    assert zstd_name.endswith(".json.zst")
    assert json.loads(zstandard.ZstdDecompressor().decompressobj().decompress(zstd_bytes)) == expected


async def test_xlsx_has_datetimes_styles_and_quoted_formulas(runtime: Runtime, tenant: str) -> None:
    items = [series_item("weight", START, END)]
    outcome = await render(runtime, job_spec(tenant, body("xlsx", items, columns=COLUMNS, includeUnit=True)))
    formulas = await render(runtime, job_spec(tenant, body("xls", [status_item()], columns=COLUMNS)))

    [(name, content)] = outcome.objects.items()
    assert name.endswith(".xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("Time", "Device", "Metric", "Weight [kg]")
    assert sheet["A1"].font.b
    # Real datetimes, on the wall clock of the target zone.
    assert rows[1:] == [
        (moment.astimezone(ZONE).replace(tzinfo=None), DEVICE, "weight", value) for moment, value in WEIGHTS
    ]
    [status_content] = formulas.objects.values()
    status_sheet = openpyxl.load_workbook(io.BytesIO(status_content)).active
    assert status_sheet is not None
    cells = [row[3] for row in status_sheet.iter_rows(min_row=2)]
    assert [cell.value for cell in cells] == STATUSES
    assert [cell.data_type for cell in cells] == ["s"] * len(STATUSES)  # text, never a formula
    assert [cell.quotePrefix for cell in cells] == [True] * 5 + [False]


async def test_pdf_is_a_titled_paged_report(runtime: Runtime, tenant: str) -> None:
    item = series_item("weight", START, END, target={"value": f"{URN}:weight", "label": "Scale 7"})
    outcome = await render(runtime, job_spec(tenant, body("pdf", [item], columns=COLUMNS)))

    [(name, content)] = outcome.objects.items()
    assert name.endswith(".pdf")
    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Scale 7" in text
    assert "Request: Weights of March" in text
    assert "Timezone: Europe/Rome" in text
    assert "Window: 2026-03-28 23:00:00 to 2026-03-29 06:00:00" in text
    assert f"Page 1 of {len(reader.pages)}" in text
    assert local_iso(WEIGHTS[0][0]) in text
    assert str(WEIGHTS[0][1]) in text
    assert local_iso(WEIGHTS[-1][0]) in text


def hourly(values: list[tuple[datetime, float]], hours: int) -> dict[datetime, list[float]]:
    """An independent bucketing: wall-clock hours of Rome via zoneinfo, the offset kept."""
    buckets: dict[datetime, list[float]] = defaultdict(list)
    for moment, value in values:
        local = moment.astimezone(ZONE)
        start = local.replace(hour=local.hour - local.hour % hours, minute=0, second=0, microsecond=0)
        buckets[start].append(value)
    return buckets


async def test_decimation_matches_an_independent_computation(runtime: Runtime, tenant: str) -> None:
    decimated = [
        series_item("weight", START, END, decimation={"ds": "1h", "dsf": function})
        for function in ("avg", "max", "count")
    ]
    outcome = await render(runtime, job_spec(tenant, body("csv", decimated, columns=COLUMNS)))

    by_function: dict[str, Callable[[list[float]], float]] = {"avg": fmean, "max": max, "count": len}
    buckets = hourly(WEIGHTS, 1)
    names = sorted(name for name in outcome.objects if name.endswith(".csv"))
    for name, (function, compute) in zip(names, by_function.items(), strict=True):
        rows = csv_rows(outcome.objects[name])[1:]
        assert [row[0] for row in rows] == [start.isoformat(timespec="milliseconds") for start in buckets]
        expected = [compute(values) for values in buckets.values()]
        assert [float(row[3]) for row in rows] == pytest.approx(expected), function
    # The hour Rome skips: 02:00 never happens, 01:00 CET is followed by 03:00 CEST.
    hours = [row[0][11:] for row in csv_rows(outcome.objects[names[0]])[1:]]
    assert hours[2:4] == ["01:00:00.000+01:00", "03:00:00.000+02:00"]


async def test_decimating_text_counts_it_and_refuses_to_average_it(runtime: Runtime, tenant: str) -> None:
    counted = series_item("status", START, END, decimation={"ds": "1d", "dsf": "count"})
    outcome = await render(runtime, job_spec(tenant, body("json", [counted], columns=COLUMNS)))
    [content] = outcome.objects.values()
    assert json.loads(content) == [
        {"Time": "2026-03-28T00:00:00.000+01:00", "Device": DEVICE, "Metric": "status", "Weight": 6}
    ]

    averaged = series_item("door", START, END, decimation={"ds": "1h", "dsf": "avg"})
    failed = await render(runtime, job_spec(tenant, body("csv", [averaged], columns=COLUMNS)))
    assert failed.result.status is JobStatus.FAILED
    assert failed.result.error is not None
    assert "decimation function 'avg' cannot aggregate the boolean values of 'value'" in failed.result.error
    assert failed.objects == {}


async def test_masks_and_hashed_names(runtime: Runtime, tenant: str) -> None:
    mask = "${thing.serialNumber}_${job.scheduledAt:%Y%m%d}"
    item = [series_item("weight", START, END)]
    named = await render(runtime, job_spec(tenant, body("csv", item, filenameMask=mask)))
    hashed = await render(runtime, job_spec(tenant, body("csv", item, filenameMask=mask, hashFilenames=True)))

    # The scheduled time is 06:00 UTC on 1 April, 08:00 in Rome: the local date.
    assert list(named.objects) == [f"{DEVICE}_20260401.csv"]
    assert list(hashed.objects) == [f"{hashlib.md5(f'{DEVICE}_20260401'.encode()).hexdigest()}.csv"]
    assert named.objects[f"{DEVICE}_20260401.csv"] == next(iter(hashed.objects.values()))


async def test_parts_and_a_zip_of_them_all(runtime: Runtime, tenant: str) -> None:
    configure(runtime, split_rows=10)
    items = [series_item("weight", START, END), {**status_item(), "filename": "states"}]
    outcome = await render(runtime, job_spec(tenant, body("csv", items, columns=COLUMNS)))

    parts = [f"export-1-part-00{number}.csv" for number in range(1, 5)]
    zip_name = "Weights of March.zip"
    assert [file.name for file in outcome.result.files] == [*parts, "states-part-001.csv", zip_name]
    assert [file.rows for file in outcome.result.files] == [10, 10, 10, 6, 6, 42]
    assert outcome.result.row_count == len(WEIGHTS) + len(STATUSES)
    joined = [row for part in parts for row in csv_rows(outcome.objects[part])[1:]]
    assert [row[0] for row in joined] == [local_iso(moment) for moment, _ in WEIGHTS]
    assert all(csv_rows(outcome.objects[part])[0] == ["Time", "Device", "Metric", "Weight"] for part in parts)
    archive = zipfile.ZipFile(io.BytesIO(outcome.objects[zip_name]))
    assert archive.testzip() is None
    assert archive.namelist() == [*parts, "states-part-001.csv"]
    assert all(archive.read(name) == outcome.objects[name] for name in archive.namelist())
    assert outcome.file(zip_name).content_type == "application/zip"

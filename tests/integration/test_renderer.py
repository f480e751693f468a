"""Golden tests of the renderer through its real path: a fixed data set in the store, a job handled
as a delivery of ``export.requested`` would be, and the files read back from the object store and
parsed with independent readers (csv, json, openpyxl, pypdf, zipfile, gzip, zstandard)."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tests.integration.renderer_support import (
    DEVICE,
    ROME,
    body,
    job_spec,
    measurement,
    render,
    series_item,
    store,
)

from exporter.contracts.job import JobStatus
from exporter.runtime import Runtime

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
    assert outcome.job["progress"]["rows"] == outcome.result.row_count == len(WEIGHTS)

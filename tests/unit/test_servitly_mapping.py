"""Seed 001's data-export mapped to our request and back (request_api.seeds.servitly), no servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from exporter.contracts.job import Job, JobFile
from exporter.contracts.request import ExportRequest, ExportType
from exporter.contracts.time_bounds import LATEST_EPOCH_MS
from exporter.domain.job_life import JobStatus
from exporter.settings import Settings
from request_api.app import create_app
from request_api.identity import MISSING_IDENTITY
from request_api.seeds.servitly import (
    MAX_QUALIFIED_METRICS,
    DataExportBody,
    archive_index,
    data_export_view,
    date_time_problem,
    export_spec,
    seed_error,
    state_of,
)
from tests.servitly_cases import SEED_001_EXAMPLES, assert_data_export, seed_001_body

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
START, END = 1772438400000, 1772442000000


def stored(body: dict[str, Any]) -> ExportRequest:
    spec = export_spec(DataExportBody.model_validate(body), NOW)
    return spec.stored(request_id="r1", tenant="acme", owner="u", version=1, created_at=NOW, updated_at=NOW)


def problem(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as raised:
        DataExportBody.model_validate(body)
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in raised.value.errors())


def test_the_seed_body_is_a_one_time_csv_request_of_things() -> None:
    request = stored(seed_001_body(START, END))
    assert request.type is ExportType.ONE_TIME
    assert request.start_at == datetime(2020, 1, 7, 23, 0, tzinfo=UTC)  # dateTime, past: runs at once
    fmt = request.format
    assert (fmt.extension, fmt.timestamp_format, fmt.include_unit, fmt.hash_filenames) == (
        "csv",
        "EPOCH_MILLIS",
        True,
        False,
    )
    assert fmt.filename_mask == "${thing.serialNumber}_${thingDefinition.name}"
    assert fmt.archive  # the seed's url is an archive's, whatever the number of things
    [item] = request.items
    things = item.things
    assert things is not None
    assert (things.from_, things.to, things.metrics) == (START, END, ["temperature"])
    assert (things.customer_id, things.location_id, things.thing_id) == (
        "customer-1",
        "plant-1",
        "D0CF5EFFFE26FDAB1",
    )
    assert (things.product_model_id, things.product_model_part_id, things.thing_definition_id) == (
        "pm-1",
        "sensor",
        None,
    )


def test_each_qualifier_is_a_selection_of_its_metrics_and_the_body_maps_back() -> None:
    metrics = [
        {"metricId": "temperature", "productModelId": "pm-1", "productModelPartId": "sensor"},
        {"metricId": "weight", "thingDefinitionId": "td-2"},
        {"metricId": "humidity", "productModelId": "pm-1", "productModelPartId": "sensor"},
    ]
    request = stored(seed_001_body(START, END, qualifiedMetricIds=metrics))
    selections = [item.things for item in request.items if item.things]
    assert [(s.product_model_id, s.thing_definition_id, s.metrics) for s in selections] == [
        ("pm-1", None, ["temperature", "humidity"]),
        (None, "td-2", ["weight"]),
    ]
    view = data_export_view(request, None)
    grouped = [metrics[0], metrics[2], metrics[1]]  # by qualifier, in the order first named
    assert_data_export(view | {"state": "PENDING"}, seed_001_body(START, END, qualifiedMetricIds=grouped))
    assert view["state"] == "PENDING"
    # Shared by no two selections: no body-level filter.
    assert (view["productModelId"], view["thingDefinitionId"]) == (None, None)


def test_body_level_filters_narrow_every_metric_and_no_metric_means_all() -> None:
    request = stored({"thingDefinitionId": "td-1", "productModelId": "pm-1"})
    [item] = request.items
    assert item.things is not None
    assert (item.things.thing_definition_id, item.things.product_model_id, item.things.metrics) == (
        "td-1",
        "pm-1",
        [],
    )
    view = data_export_view(request, None)
    assert (view["thingDefinitionId"], view["qualifiedMetricIds"], view["startTimestamp"]) == (
        "td-1",
        [],
        None,
    )
    assert view["thingFileName"] == "${thing.serialNumber}_${thingDefinition.name}"  # our default
    qualified = stored({"thingDefinitionId": "td-1", "qualifiedMetricIds": [{"metricId": "weight"}]})
    assert data_export_view(qualified, None)["qualifiedMetricIds"] == [
        {
            "metricId": "weight",
            "productModelId": None,
            "productModelPartId": None,
            "thingDefinitionId": "td-1",
        }
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (SEED_001_EXAMPLES, ": Value error, 'startTimestamp' must be before 'endTimestamp'"),
        ({"timestampFormat": "RFC_3339"}, "timestampFormat: Input should be 'ISO_8601' or 'EPOCH_MILLIS'"),
        ({"startTimestamp": -1}, "startTimestamp: Input should be greater than or equal to 0"),
        ({"endTimestamp": LATEST_EPOCH_MS + 1}, "endTimestamp: Input should be less than or equal to"),
        ({"dateTime": "1578438000000"}, "dateTime: Input should be a valid integer"),
        ({"thingFileName": "../${thing.id}"}, "thingFileName: Value error, must not contain path separators"),
        ({"thingFileName": "${thing.secret}"}, "thingFileName: Value error, '${thing.secret}' is not a"),
        ({"customerId": "c" * 201}, "customerId: String should have at most 200 characters"),
        ({"qualifiedMetricIds": [{"metricId": ""}]}, "qualifiedMetricIds.0.metricId: String should have at"),
        ({"qualifiedMetricIds": [{"metricId": "a"}] * 2}, "each qualified metric may be named once"),
        (
            {"qualifiedMetricIds": [{"metricId": f"m{i}"} for i in range(MAX_QUALIFIED_METRICS + 1)]},
            f"qualifiedMetricIds: List should have at most {MAX_QUALIFIED_METRICS} items",
        ),
        (
            {
                "thingDefinitionId": "td-1",
                "qualifiedMetricIds": [{"metricId": "a", "thingDefinitionId": "td-2"}],
            },
            "qualifiedMetricIds.0.thingDefinitionId: the body's thingDefinitionId is 'td-1'",
        ),
        ({"state": "COMPLETED"}, "state: Extra inputs are not permitted"),
    ],
)
def test_worst_values_are_refused_naming_the_seed_field(body: dict[str, Any], expected: str) -> None:
    assert expected in problem(body)


def test_a_date_time_ahead_of_the_clock_is_refused_and_a_near_one_runs_now() -> None:
    ahead = DataExportBody(date_time=int((NOW + timedelta(minutes=5)).timestamp() * 1000))
    assert date_time_problem(ahead, NOW) == (
        "dateTime: a data-export runs when it is scheduled; it cannot be scheduled ahead"
    )
    near = DataExportBody(date_time=int((NOW + timedelta(seconds=30)).timestamp() * 1000))
    assert date_time_problem(near, NOW) is None
    assert export_spec(near, NOW).start_at == NOW


def job(status: JobStatus, files: list[JobFile] | None = None) -> Job:
    return Job(
        id="j",
        request_id="r1",
        tenant="acme",
        owner="u",
        scheduled_at=NOW,
        created_at=NOW,
        status=status,
        files=files or [],
    )


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (JobStatus.NOT_PROCESSED, "PENDING"),
        (JobStatus.IN_PROGRESS, "PENDING"),
        (JobStatus.DONE, "COMPLETED"),
        (JobStatus.EXPIRED, "COMPLETED"),  # done; its archive was deleted after the retention
        (JobStatus.FAILED, "ERROR"),
        (JobStatus.CANCELLED, "ERROR"),
        (JobStatus.SKIPPED, "ERROR"),
    ],
)
def test_every_job_status_is_one_of_the_seed_states(status: JobStatus, state: str) -> None:
    assert state_of(job(status)) == state


def test_the_url_is_the_completed_runs_zip() -> None:
    def file(name: str, content_type: str) -> JobFile:
        return JobFile(key=name, name=name, size_in_bytes=1, rows=1, checksum="x", content_type=content_type)

    files = [file("a.csv", "text/csv"), file("b.csv", "text/csv"), file("e.zip", "application/zip")]
    assert archive_index(job(JobStatus.DONE, files)) == 2
    assert archive_index(job(JobStatus.EXPIRED, files)) is None
    assert archive_index(None) is None
    assert state_of(None) == "PENDING"


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        (400, MISSING_IDENTITY, (401, "User not authenticated")),
        (401, "Invalid bearer token: Signature verification failed", (401, "User not authenticated")),
        (403, "User not authorized: no grant", (403, "User not authorized: no grant")),
        (
            403,
            "Missing or wrong X-Gateway-Secret",
            (403, "User not authorized: Missing or wrong X-Gateway-Secret"),
        ),
        (
            409,
            "An export of the same target is already notProcessed: job 'j'",
            (
                429,
                "API call rate limit exeeded: only one bulk export can be scheduled at a time "
                "(An export of the same target is already notProcessed: job 'j')",
            ),
        ),
        (
            429,
            "Maximum number of queued exports reached",
            (429, "API call rate limit exeeded: Maximum number of queued exports reached"),
        ),
        (503, "The token signing keys cannot be fetched", (500, "Internal Server Error")),
        (400, "dateTime: no", (400, "dateTime: no")),
        (404, "Export request 'x' not found", (404, "Export request 'x' not found")),
    ],
)
def test_refusals_in_the_seed_vocabulary(status: int, detail: str, expected: tuple[int, str]) -> None:
    assert seed_error(status, detail) == expected


APP = create_app(Settings())  # no lifespan: no runtime, so a handler that gets that far fails


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({"X-Servitly-Tenant": "default"}, 401, "User not authenticated"),
        # Authenticated, but the handler fails (no runtime here): the seed's 500, nothing of ours.
        ({"X-User-Id": "u", "X-Servitly-Tenant": "default"}, 500, "Internal Server Error"),
        ({"X-User-Id": "u", "X-Servitly-Tenant": "globex"}, 403, "User not authorized"),
    ],
)
async def test_the_routes_answer_in_the_seed_vocabulary(
    headers: dict[str, str], status: int, message: str
) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://api") as client:
        answer = await client.post("/data/dataExports", json=seed_001_body(START, END), headers=headers)
    assert answer.status_code == status
    assert answer.json()["message"].startswith(message)
    assert list(answer.json()) == ["message"]

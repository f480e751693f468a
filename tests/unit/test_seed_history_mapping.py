"""Seed 004's mapping (request_api.seeds.history) over data, and ``createdBy`` on queued jobs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from exporter.contracts.job import Job, JobFile
from exporter.contracts.request import ExportRequestSpec
from exporter.domain.job_life import JobStatus
from exporter.service_layer.dispatch import queued_job
from request_api.seeds import history
from tests.request_cases import with_fields
from tests.seed_history_examples import SEED_CANCEL_BODY, SEED_ENTRY_FIELDS, assert_seed_shape

NOW = datetime(2021, 4, 26, 15, 25, 27, 587_000, tzinfo=UTC)
NUMBERS = history.Numbers(job=1, request=22, user=6)


def spec() -> ExportRequestSpec:
    body = with_fields({"type": "oneTime", "name": "Sample"})
    body.pop("periodicity")
    return ExportRequestSpec.model_validate(body)


def job(**fields: Any) -> Job:
    request = spec().stored(
        request_id="r-1", tenant="acme", owner="alice", version=1, created_at=NOW, updated_at=NOW
    )
    document, _ = queued_job(request, NOW, "test")
    stored = {k: v for k, v in document.items() if k != "_id"}
    return Job.model_validate({"id": document["_id"], **stored, **fields})


def done(**fields: Any) -> Job:
    file = JobFile(
        key="acme/r-1/a.zip", name="a.zip", size_in_bytes=10, rows=26, checksum="x", content_type="z"
    )
    return job(
        status="done", startedAt=NOW, completedAt=NOW, files=[file.to_document()], rowCount=26, **fields
    )


def test_a_completed_run_has_every_field_of_the_seed_of_its_type() -> None:
    entry = history.entry(done(), NUMBERS, "exports")
    assert_seed_shape(entry, SEED_ENTRY_FIELDS)
    assert entry["created"].endswith("Z")
    assert entry["start"] == "2021-04-26T15:25:27.587Z"
    assert (entry["dataExportHistoryStatusTypeId"], entry["dataExportHistoryStatusTypeName"]) == (
        3,
        "Completed",
    )
    assert (entry["storageKey"], entry["exportRowCount"]) == ("acme/r-1/a.zip", 26)
    assert (entry["identity"], entry["dataExportId"], entry["createdByUserId"]) == (1, 22, 6)
    assert entry["createdByUserName"] == "alice"
    assert json.loads(entry["parameters"]) == spec().to_wire() | {"name": "Sample"}
    assert entry["dataExportName"] == "Sample"


def test_every_status_has_its_own_type_id() -> None:
    assert set(history.STATUS_TYPES) == set(JobStatus)
    assert len({type_id for type_id, _ in history.STATUS_TYPES.values()}) == len(JobStatus)


def test_the_user_who_caused_the_run_is_created_by_and_the_events_actor() -> None:
    request = spec().stored(
        request_id="r-1", tenant="acme", owner="alice", version=1, created_at=NOW, updated_at=NOW
    )
    scheduled, scheduled_event = queued_job(request, NOW, "test")
    run_now, run_now_event = queued_job(request, NOW, "test", created_by="bob")
    assert (scheduled["createdBy"], scheduled_event["payload"]["actor"]) == ("alice", "alice")
    assert (run_now["createdBy"], run_now_event["payload"]["actor"]) == ("bob", "bob")
    assert history.entry(job(createdBy="bob"), NUMBERS, "exports")["createdByUserName"] == "bob"
    assert history.created_by(job(createdBy=None)) == "alice"  # a job from before createdBy


def test_parameters_too_long_are_cut_to_the_name_and_where_to_read_them() -> None:
    long = job().spec or {}
    long["request"]["items"][0]["label"] = "x" * history.MAX_PARAMETERS
    text = history.parameters(job(spec=long))
    assert len(text) < history.MAX_PARAMETERS
    assert json.loads(text) == {"name": "Sample", "truncated": True, "whole": f"/jobs/{job().id}"}


def test_transfer_fields_are_null_until_a_request_names_a_location_and_its_push_is_planned() -> None:
    assert history.transfer_of(done(), NUMBERS) == history.Transfer()
    numbered = history.Numbers(job=1, request=22, user=6, transfer_location=8)
    spec = done().spec or {}
    spec["request"]["transferLocationId"] = "tl-1"
    named = done(spec=spec)
    assert history.transfer_of(named, numbered) == history.Transfer(8, None, None)
    log = [{"index": 0, "name": "a.zip", "key": "acme/r-1/a.zip", "status": "done", "attempts": 1}]
    planned = done(spec=spec, transferLocationId="tl-1", transferLocationName="sftp", transfers=log)
    assert history.transfer_of(planned, numbered) == history.Transfer(8, "sftp", 1)


def test_envelopes_are_the_seeds() -> None:
    entry = history.entry(done(), NUMBERS, "exports")
    paging = history.Paging(pageNumber=2, pageSize=5, excludeTotalCount=True)
    assert history.paged("t", paging, [entry], None) == {
        "trackingId": "t",
        "pagination": {"pageNumber": 2, "pageSize": 5, "excludeTotalCount": True},
        "pagedResults": {"items": [entry]},
    }
    assert history.created("t", [entry]) == {
        "trackingId": "t",
        "type": "create",
        "results": {"totalCount": 1, "items": [entry]},
    }
    assert history.listing("t", [], 0) == {"trackingId": "t", "totalCount": 0, "items": []}
    assert paging.pagination().skip == 5


def test_the_seeds_cancel_body_is_taken_and_its_worst_values_refused() -> None:
    history.Cancel.model_validate(SEED_CANCEL_BODY)
    for field, worst in {
        "dataExportHistoryStatusTypeId": 2**53 + 1,
        "exportRowCount": -1,
        "parameters": "x" * (history.MAX_PARAMETERS + 1),
        "storageKey": "k" * 1025,
        "start": "0001-01-01T00:00:00Z",
    }.items():
        with pytest.raises(ValidationError):
            history.Cancel.model_validate({**SEED_CANCEL_BODY, field: worst})


@pytest.mark.parametrize("worst", [0, 2**53 + 1, "", "x" * 201, None])
def test_a_trigger_names_a_number_or_an_id_within_bounds(worst: Any) -> None:
    with pytest.raises(ValidationError):
        history.Trigger.model_validate({"dataExportId": worst})
    assert history.Trigger.model_validate({"dataExportId": 19}).data_export_id == 19
    assert history.Trigger.model_validate({"dataExportId": "r-1"}).data_export_id == "r-1"

"""A stored job read as a typed ``Job``: every field typed, the document given back unchanged (the
API shows it, the notifier's compare-and-set matches it), an old one read with defaults, and a
damaged one told apart without its values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.job_store import UnreadableJob, read_job, to_job
from exporter.adapters.mongo.jobs import new_job_document
from exporter.contracts.job import Job, JobFile, Refusal
from exporter.contracts.request import ExportRequestSpec
from exporter.domain.job_life import DeliveryStatus, JobStatus
from exporter.domain.jobs import job_for, pending_deliveries
from request_api.views import job_view
from tests.request_cases import SEED_000

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
FILE = {
    "key": "acme/r-1/j/a.csv",
    "name": "a.csv",
    "sizeInBytes": 12,
    "rows": 2,
    "checksum": "sha256:00",
    "contentType": "text/csv",
}


def fresh_job() -> Document:
    """A job as ``new_job_document`` stores it: two messages, one email and one Discord."""
    messages = [
        {"policy": "always", "medium": "email", "title": "t", "text": "x", "recipients": ["a@example.com"]},
        {"policy": "onFailure", "medium": "discord", "title": "t", "text": "x", "recipients": ["webhook:o"]},
    ]
    body = {**SEED_000, "notification": {"messages": messages}}
    request = ExportRequestSpec.model_validate(body).stored(
        request_id="r-1", tenant="acme", owner="alice", version=1, created_at=NOW, updated_at=NOW
    )
    spec = job_for(request, NOW)
    return new_job_document(spec, pending_deliveries(spec.request)) | {"createdAt": NOW, "updatedAt": NOW}


def lived(document: Document) -> Document:
    """``document`` after a run, its deliveries and its expiry, each write as MongoDB makes it: a
    ``$set`` keeps a field where it is and adds a new one at the end."""
    later = NOW + timedelta(minutes=1)
    document = document | {
        "status": "expired",
        "startedAt": NOW,
        "completedAt": later,
        "progress": {"rows": 2},
        "bucket": "exports",
        "files": [FILE],
        "rowCount": 2,
        "sizeInBytes": 12,
        "leaseUntil": None,
        "expiredAt": later,
    }
    sent, skipped = document["notifications"]
    claim = {"status": "sending", "key": "j.0", "updatedAt": later, "leaseUntil": later}
    claim["nextAttemptAt"] = None
    result = {
        "recipients": ["a@example.com", "b@example.com"],
        "sentTo": ["a@example.com"],
        "refused": [{"recipient": "b@example.com", "reason": "SMTP 550"}],
        "lastError": "b@example.com: SMTP 550",
        "detail": None,
        "leaseUntil": None,
        "sentAt": later,
        "status": "sent",
    }
    sent = sent | claim | {"attempts": 1} | result
    skipped = skipped | {"status": "skipped", "detail": "policy onFailure does not apply", "updatedAt": later}
    return document | {"notifications": [sent, skipped]}


def old_job() -> Document:
    """A job as an early version stored it: no deliveries, lease, attempts, targets nor spec."""
    return {
        "_id": "r-0-20250101T000000000Z",
        "requestId": "r-0",
        "tenant": "acme",
        "owner": "alice",
        "scheduledAt": NOW,
        "status": "done",
        "createdAt": NOW,
        "files": [FILE],
    }


def shown_as_stored(document: Document) -> dict[str, Any]:
    """The API's view of a job as the request-api made it from the document itself: every field
    but the services' own, then the id and the parameters."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat().replace("+00:00", "Z")
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return [plain(v) for v in value] if isinstance(value, list) else value

    view = {k: plain(v) for k, v in document.items() if k not in {"_id", "leaseUntil", "spec", "targets"}}
    view["id"] = document["_id"]
    view["notifications"] = [
        {k: v for k, v in delivery.items() if k not in {"leaseUntil", "key"}}
        for delivery in view.get("notifications", [])
    ]
    spec = document.get("spec") or {}
    view["parameters"] = plain({"request": spec.get("request"), "windows": spec.get("windows")})
    return view


def stored(job: Job) -> Document:
    fields = job.to_stored()
    return {"_id": fields.pop("id"), **fields}


def test_a_stored_job_reads_typed_and_gives_back_the_same_document() -> None:
    document = lived(fresh_job()) | {"renewedBy": "renderer-2"}  # a field a later version adds

    job = to_job(document)

    assert (job.id, job.status, job.progress.rows, job.expired_at) == (
        document["_id"],
        JobStatus.EXPIRED,
        2,
        NOW + timedelta(minutes=1),
    )
    assert job.files == [JobFile.model_validate(FILE)]
    assert job.result.files == job.files
    assert job.result.row_count == 2
    sent, skipped = job.notifications
    assert (sent.status, sent.attempts, sent.sent_to) == (DeliveryStatus.SENT, 1, ["a@example.com"])
    assert sent.refused == [Refusal(recipient="b@example.com", reason="SMTP 550")]
    assert (skipped.status, skipped.policy) == (DeliveryStatus.SKIPPED, "onFailure")
    # The same fields in the same order: what the API shows, and what a claim compares.
    assert list(stored(job).items()) == list(document.items())
    assert [list(d.to_stored().items()) for d in job.notifications] == [
        list(d.items()) for d in document["notifications"]
    ]


@pytest.mark.parametrize(
    "document", [fresh_job(), lived(fresh_job()), old_job()], ids=["new", "lived", "old"]
)
def test_the_api_shows_a_typed_job_byte_for_byte_as_it_showed_its_document(document: Document) -> None:
    shown = json.dumps(job_view(to_job(document)))

    assert shown == json.dumps(shown_as_stored(document))


def test_an_old_job_reads_with_defaults_and_shows_only_what_it_stored() -> None:
    job = to_job(old_job())

    assert (job.attempts, job.notifications, job.targets, job.spec) == (0, [], [], None)
    assert job.result.files == [JobFile.model_validate(FILE)]
    assert list(job_view(job)) == [
        "requestId",
        "tenant",
        "owner",
        "scheduledAt",
        "status",
        "createdAt",
        "files",
        "id",
        "notifications",
        "parameters",
    ]


def test_a_damaged_job_is_unreadable_by_its_fields_paths_never_their_values() -> None:
    document = lived(fresh_job())
    document["status"] = "exploded"
    document["notifications"][0]["attempts"] = "the password is hunter2"

    read = read_job(document, Job)

    assert isinstance(read, UnreadableJob)
    assert read.job_id == document["_id"]
    assert read.problem == "its stored fields no longer validate: notifications.0.attempts, status"
    assert "hunter2" not in read.problem
    assert job_view(read) == {"id": document["_id"], "problem": read.problem}
    with pytest.raises(ValidationError):
        to_job(document)


def test_a_damaged_spec_still_reads_so_the_job_can_be_shown_and_failed() -> None:
    job = to_job(fresh_job() | {"spec": {"damaged": True}})

    assert job.status is JobStatus.NOT_PROCESSED
    assert job_view(job)["parameters"] == {"request": None, "windows": None}

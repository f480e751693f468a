"""Seed 003's mapping (request_api.seeds.mews) and its settings block, over data alone: tokens to
identities, our job statuses to the seed's, our requests and jobs to its ``Export``, our refusals
to its status codes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from exporter.adapters.mongo.job_store import UnreadableJob
from exporter.contracts.job import Job, JobFile
from exporter.contracts.request import ExportRequest
from exporter.domain.access import Principal
from exporter.domain.job_life import JobStatus
from exporter.settings import Settings
from exporter.settings.mews import MAX_CLIENTS, MewsClientSettings, MewsSettings, token_hash
from request_api.commands import Download
from request_api.seeds import mews

CLIENT_TOKEN = "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D"
ACCESS_TOKEN = "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D"
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=30)


def client(access: str = ACCESS_TOKEN, client_token: str | None = None, **fields: Any) -> MewsClientSettings:
    return MewsClientSettings(
        access_token_sha256=token_hash(access),
        client_token_sha256=None if client_token is None else token_hash(client_token),
        **{"tenant": "acme", "user": "mews-app", **fields},
    )


def identify(clients: list[MewsClientSettings], client_token: str, access: str) -> Principal | None:
    return mews.principal_for(clients, SecretStr(client_token), SecretStr(access))


def test_a_configured_access_token_is_its_identity_and_any_other_is_none() -> None:
    clients = [client("another-token", tenant="globex"), client(roles=["exporter"])]
    assert identify(clients, CLIENT_TOKEN, ACCESS_TOKEN) == Principal(
        "mews-app", "acme", frozenset({"exporter"})
    )
    assert identify(clients, CLIENT_TOKEN, ACCESS_TOKEN.lower()) is None
    assert identify(clients, CLIENT_TOKEN, "") is None
    assert identify([], CLIENT_TOKEN, ACCESS_TOKEN) is None


def test_a_configured_client_token_must_come_with_its_access_token() -> None:
    clients = [client(client_token=CLIENT_TOKEN)]
    assert identify(clients, CLIENT_TOKEN, ACCESS_TOKEN) is not None
    assert identify(clients, "Another client", ACCESS_TOKEN) is None


def test_tokens_are_configured_as_hashes_in_a_bounded_list_each_once() -> None:
    with pytest.raises(ValidationError, match="access_token_sha256"):
        MewsClientSettings(access_token_sha256=ACCESS_TOKEN, tenant="acme", user="u")  # the token itself
    with pytest.raises(ValidationError, match="tenant"):
        client(tenant="acme/other")
    with pytest.raises(ValidationError, match="roles"):
        client(roles=["a,b"])
    with pytest.raises(ValidationError, match="once"):
        MewsSettings(clients=[client(), client(tenant="globex")])
    many = [client(f"token-{n}") for n in range(MAX_CLIENTS + 1)]
    with pytest.raises(ValidationError, match=f"at most {MAX_CLIENTS}"):
        MewsSettings(clients=many)
    with pytest.raises(ValidationError, match="link_ttl_seconds"):
        MewsSettings(link_ttl_seconds=7 * 24 * 3600 + 1)


def test_the_settings_block_travels_as_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(mews=MewsSettings(clients=[client(roles=["r"])]))
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert ACCESS_TOKEN not in "".join(settings.to_env().values())
    assert Settings().mews == settings.mews


def test_every_job_status_has_a_seed_status() -> None:
    assert set(mews.STATUSES) == set(JobStatus)
    assert set(mews.STATUSES.values()) == {"Pending", "Processing", "Success", "Failed", "Expired"}


def test_add_is_a_one_time_json_lines_export_of_the_entity_type() -> None:
    body = mews.AddExport.model_validate(
        {"ClientToken": "c", "AccessToken": "a", "Client": "Sample Client 1.0.0", "EntityType": "OrderItem"}
    )
    spec = mews.export_spec(body)
    assert spec.to_wire()["items"] == [
        {"entities": {"entityType": "OrderItem"}, "filename": None, "params": None, "things": None}
    ]
    assert (spec.type.value, spec.format.extension, spec.name) == (
        "oneTime",
        "jsonl",
        "OrderItem export (Sample Client 1.0.0)",
    )
    assert "'a'" not in repr(body)  # the tokens are secrets


def test_bodies_are_bounded() -> None:
    credentials = {"ClientToken": "c", "AccessToken": "a", "Client": "x"}
    with pytest.raises(ValidationError, match="EntityType"):
        mews.AddExport.model_validate({**credentials, "EntityType": "Room"})
    ids = [str(uuid.uuid4()) for _ in range(mews.MAX_EXPORT_IDS + 1)]
    with pytest.raises(ValidationError, match="at most 1000 items"):
        mews.GetAllExports.model_validate({**credentials, "ExportIds": ids})
    with pytest.raises(ValidationError, match="AccessToken"):
        mews.AddExport.model_validate({**credentials, "AccessToken": "a" * 201, "EntityType": "Bill"})


def test_export_ids_are_guids_of_our_request_ids() -> None:
    request_id = uuid.uuid4().hex
    assert mews.request_ids([mews.export_id(request_id), request_id, "not-an-id", ""]) == [
        request_id,
        request_id,
    ]


def request(**changes: Any) -> ExportRequest:
    wire = {
        "id": uuid.uuid4().hex,
        "tenant": "acme",
        "owner": "mews-app",
        "createdAt": CREATED,
        "updatedAt": CREATED,
        "type": "oneTime",
        "format": {"extension": "jsonl"},
        "items": [{"entities": {"entityType": "Payment"}}],
    }
    return ExportRequest.model_validate({**wire, **changes})


def test_only_one_time_live_plain_json_lines_exports_of_a_seed_entity_type_are_mews_exports() -> None:
    assert mews.is_export(request())
    assert not mews.is_export(request(type="recurring", periodicity="P1D"))
    assert not mews.is_export(request(deletedAt=CREATED))
    assert not mews.is_export(request(format={"extension": "jsonl", "compression": "gzip"}))
    assert not mews.is_export(request(items=[{"entities": {"entityType": "Room"}}]))
    assert not mews.is_export(request(items=[{"entities": {"entityType": "Bill"}}] * 2))


def job(status: JobStatus, files: list[JobFile] | None = None) -> Job:
    return Job(
        id="j-1",
        request_id="r-1",
        tenant="acme",
        owner="mews-app",
        scheduled_at=CREATED,
        status=status,
        created_at=CREATED,
        files=files or [],
    )


def file(name: str, content_type: str = "application/x-ndjson") -> JobFile:
    return JobFile(
        key=f"k/{name}", name=name, size_in_bytes=len(name), rows=1, checksum="c", content_type=content_type
    )


def test_a_done_export_lists_its_json_lines_files_not_their_zip_and_when_they_expire() -> None:
    files = [
        file("Payment-part-001.jsonl"),
        file("Payment-part-002.jsonl"),
        file("all.zip", "application/zip"),
    ]
    links = [Download(url=f"https://s3/{f.name}?sig", expires_at=CREATED, file=f) for f in files]
    stored = request()
    view = mews.export_view(stored, job(JobStatus.DONE, files), links, RETENTION)
    assert view == {
        "Id": str(uuid.UUID(stored.id)),
        "Status": "Success",
        "EntityType": "Payment",
        "Files": [
            {"Url": "https://s3/Payment-part-001.jsonl?sig", "SizeInBytes": 22},
            {"Url": "https://s3/Payment-part-002.jsonl?sig", "SizeInBytes": 22},
        ],
        "ExpiresUtc": "2026-03-31T12:00:00.000Z",
    }


@pytest.mark.parametrize(
    ("found", "status", "expires"),
    [
        (None, "Pending", None),
        (job(JobStatus.NOT_PROCESSED), "Pending", None),
        (job(JobStatus.IN_PROGRESS), "Processing", None),
        (job(JobStatus.CANCELLED), "Failed", None),
        (job(JobStatus.EXPIRED), "Expired", "2026-03-31T12:00:00.000Z"),
        (UnreadableJob("j-1", "status: bad"), "Failed", None),
    ],
)
def test_the_export_follows_its_latest_job(
    found: Job | UnreadableJob | None, status: str, expires: str | None
) -> None:
    view = mews.export_view(request(), found, [], RETENTION)
    assert (view["Status"], view["Files"], view["ExpiresUtc"]) == (status, [], expires)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (400, 400),
        (401, 401),
        (403, 403),
        (404, 400),
        (409, 403),
        (410, 403),
        (413, 400),
        (422, 400),
        (429, 429),
        (503, 500),
    ],
)
def test_our_refusals_get_mews_status_codes(ours: int, theirs: int) -> None:
    assert mews.error_status(ours) == theirs
    assert mews.error_body("No.", "rid") == {"Message": "No.", "RequestId": "rid", "Details": None}

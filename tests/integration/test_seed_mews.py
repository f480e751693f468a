"""Seed 003 (Mews "Exports") over real HTTP against the real store, broker and object store: the
seed's request bodies sent as written (the test settings give the seed's example tokens an
identity), answers compared field by field with the seed's examples, its refusals in its error
shape, and an export rendered to completion whose file Url downloads the JSON Lines."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from exporter.contracts.ingest import Entity
from exporter.contracts.job import Job, JobSpec
from exporter.runtime import Runtime
from exporter.settings import Settings
from exporter.settings.mews import MewsClientSettings, MewsSettings, token_hash
from renderer.export_job import handle_export_requested
from tests.integration.api_server import isolated, serving
from tests.integration.conftest import running
from tests.integration.renderer_support import requested

pytestmark = pytest.mark.servers
GET_ALL = "/api/connector/v1/exports/getAll"
ADD = "/api/connector/v1/exports/add"

# docs/seeds/003.txt, as written.
SEED_GET_ALL = {
    "ClientToken": "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D",
    "AccessToken": "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",
    "Client": "Sample Client 1.0.0",
    "ExportIds": [
        "3fa85f64-5717-4562-b3fd-2c963f66afa6",
        "09708665-0e31-4b23-b337-b0a000be0df0",
        "706dc6d5-9511-4751-825e-538ce99da2ce",
        "f776f20a-6f1a-4ddf-93f4-9dae95261415",
    ],
}
SEED_GET_ALL_ANSWER = {
    "Exports": [
        {
            "Id": "3fa85f64-5717-4562-b3fd-2c963f66afa6",
            "Status": "Success",
            "EntityType": "OrderItem",
            "ExpiresUtc": "2023-10-26T11:42:28Z",
            "Files": [
                {
                    "Url": "https://example.com/exports/3fa85f64-5717-4562-b3fd-2c963f66afa6-1.jsonl?example=signature",
                    "SizeInBytes": 1215279,
                },
                {
                    "Url": "https://example.com/exports/3fa85f64-5717-4562-b3fd-2c963f66afa6-2.jsonl?example=signature",
                    "SizeInBytes": 1398362,
                },
            ],
        },
        {
            "Id": "09708665-0e31-4b23-b337-b0a000be0df0",
            "Status": "Pending",
            "EntityType": "OrderItem",
            "Files": [],
            "ExpiresUtc": None,
        },
        {
            "Id": "706dc6d5-9511-4751-825e-538ce99da2ce",
            "Status": "Processing",
            "EntityType": "OrderItem",
            "Files": [],
            "ExpiresUtc": None,
        },
        {
            "Id": "f776f20a-6f1a-4ddf-93f4-9dae95261415",
            "Status": "Expired",
            "EntityType": "OrderItem",
            "Files": [],
            "ExpiresUtc": "2023-10-24T14:12:30Z",
        },
    ]
}
SEED_ADD = {
    "ClientToken": "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D",
    "AccessToken": "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",
    "Client": "Sample Client 1.0.0",
    "EntityType": "OrderItem",
}
SEED_ADD_ANSWER = {
    "Export": {
        "Id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "Status": "Pending",
        "EntityType": "OrderItem",
        "Files": [{"Url": "string", "SizeInBytes": 0}],
        "ExpiresUtc": "2024-04-11T08:54:47.193Z",
    }
}
OTHER_TENANT_TOKEN = "another-enterprise-access-token"
TENANT = "acme"


@pytest.fixture(scope="module")
def mews_settings(servers: Settings) -> Settings:
    clients = [
        MewsClientSettings(
            access_token_sha256=token_hash(SEED_ADD["AccessToken"]),
            client_token_sha256=token_hash(SEED_ADD["ClientToken"]),
            tenant=TENANT,
            user="mews-app",
        ),
        MewsClientSettings(
            access_token_sha256=token_hash(OTHER_TENANT_TOKEN), tenant="globex", user="mews-app"
        ),
    ]
    api = isolated(servers, max_active_jobs_per_user=100, one_active_job_per_target=True)
    return api.model_copy(update={"mews": MewsSettings(clients=clients)})


@pytest.fixture(scope="module")
async def api(mews_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(mews_settings) as url, httpx.AsyncClient(base_url=url, timeout=20) as client:
        yield client


@pytest.fixture
async def runtime(mews_settings: Settings, api: httpx.AsyncClient) -> AsyncIterator[Runtime]:
    """The API's own database, for what the seed leaves to other services: entities, renders."""
    async with running(mews_settings) as wired:
        yield wired


def same_shape(ours: Any, seed: Any, path: str = "") -> None:
    """Every field of the seed's example present in ours with a value of the same JSON type
    (null where the seed has null); arrays compared by their first elements."""
    if isinstance(seed, dict):
        assert isinstance(ours, dict), path
        assert ours.keys() == seed.keys(), path
        for name, value in seed.items():
            same_shape(ours[name], value, f"{path}.{name}")
    elif isinstance(seed, list):
        assert isinstance(ours, list), path
        for mine, theirs in zip(ours, seed, strict=False):
            same_shape(mine, theirs, f"{path}[]")
    elif seed is None:
        assert ours is None, path
    else:
        assert type(ours) is type(seed), path


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def mews_error(answer: httpx.Response, status_code: int) -> str:
    assert answer.status_code == status_code, answer.text
    body = answer.json()
    assert set(body) == {"Message", "RequestId", "Details"}
    assert answer.headers["Request-Id"] == body["RequestId"]
    assert isinstance(body["Message"], str)
    message: str = body["Message"]
    return message


async def get_all(
    api: httpx.AsyncClient, *ids: str, token: str = SEED_ADD["AccessToken"]
) -> list[dict[str, Any]]:
    body = {**SEED_GET_ALL, "AccessToken": token, "ExportIds": list(ids)}
    answer = await api.post(GET_ALL, json=body)
    assert answer.status_code == 200, answer.text
    exports: list[dict[str, Any]] = answer.json()["Exports"]
    return exports


async def test_the_seeds_add_then_a_second_while_pending_is_refused(api: httpx.AsyncClient) -> None:
    answer = await api.post(ADD, json=SEED_ADD)

    assert answer.status_code == 200, answer.text
    export = answer.json()["Export"]
    same_shape(answer.json(), {"Export": {**SEED_ADD_ANSWER["Export"], "Files": [], "ExpiresUtc": None}})
    assert uuid.UUID(export["Id"])
    assert (export["Status"], export["EntityType"], export["Files"]) == ("Pending", "OrderItem", [])
    assert await get_all(api, export["Id"]) == [export]

    # The same entity type while that one is pending: the core's one-job-per-target rule.
    message = mews_error(await api.post(ADD, json=SEED_ADD), 403)
    assert "already notProcessed" in message
    assert await get_all(api, export["Id"]) == [export]


async def test_the_seeds_get_all_leaves_unknown_ids_out(api: httpx.AsyncClient) -> None:
    answer = await api.post(GET_ALL, json=SEED_GET_ALL)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"Exports": []}


async def test_other_tenants_exports_are_absent(api: httpx.AsyncClient) -> None:
    added = await api.post(ADD, json={**SEED_ADD, "EntityType": "Company"})
    assert added.status_code == 200, added.text
    export_id = added.json()["Export"]["Id"]

    assert await get_all(api, export_id, token=OTHER_TENANT_TOKEN) == []
    assert [export["Id"] for export in await get_all(api, export_id, export_id)] == [export_id]


async def test_bad_tokens_are_401_in_the_seeds_error_shape_and_no_token_is_logged_or_echoed(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-access-token-" + uuid.uuid4().hex
    wrong_access = await api.post(GET_ALL, json={**SEED_GET_ALL, "AccessToken": wrong})
    assert "ClientToken or AccessToken" in mews_error(wrong_access, 401)
    # The access token is right, but it is configured with another client token.
    wrong_client = {**SEED_ADD, "ClientToken": "another-client-" + uuid.uuid4().hex}
    other_client = await api.post(ADD, json=wrong_client)
    assert "ClientToken or AccessToken" in mews_error(other_client, 401)
    too_long = await api.post(ADD, json={**SEED_ADD, "AccessToken": wrong * 20})
    assert "AccessToken" in mews_error(too_long, 400)

    answers = wrong_access.text + other_client.text + too_long.text
    for token in (wrong, wrong_client["ClientToken"], SEED_ADD["AccessToken"], SEED_ADD["ClientToken"]):
        assert token not in caplog.text
        assert token not in answers


async def test_more_than_1000_ids_or_an_unknown_entity_type_are_400(api: httpx.AsyncClient) -> None:
    too_many = {**SEED_GET_ALL, "ExportIds": [str(uuid.uuid4()) for _ in range(1001)]}
    assert "ExportIds" in mews_error(await api.post(GET_ALL, json=too_many), 400)
    assert "EntityType" in mews_error(await api.post(ADD, json={**SEED_ADD, "EntityType": "Room"}), 400)
    missing = {key: value for key, value in SEED_ADD.items() if key != "AccessToken"}
    assert "AccessToken" in mews_error(await api.post(ADD, json=missing), 400)
    invalid = await api.post(ADD, content=b"{", headers={"Content-Type": "application/json"})
    assert mews_error(invalid, 400)


async def render_latest_job(runtime: Runtime, export_id: str) -> Job:
    """What the renderer does when the job's ``export.requested`` reaches it."""
    request_id = uuid.UUID(export_id).hex
    job = (await runtime.jobs.latest_for_requests(TENANT, [request_id]))[request_id]
    assert isinstance(job, Job)
    assert job.spec is not None
    await handle_export_requested(runtime, requested(JobSpec.model_validate(job.spec)))
    done = await runtime.jobs.get(job.id)
    assert done is not None
    return done


async def test_a_completed_export_lists_files_whose_urls_download_json_lines_until_it_expires(
    api: httpx.AsyncClient, runtime: Runtime
) -> None:
    payments = [
        Entity(
            entity_type="Payment", id=f"p-{n}", version=1, document={"Id": f"p-{n}", "Amount": n, "Note": "ü"}
        )
        for n in range(3)
    ]
    await runtime.entities.upsert_many([(TENANT, payment) for payment in payments])
    added = await api.post(ADD, json={**SEED_ADD, "EntityType": "Payment"})
    assert added.status_code == 200, added.text
    export_id = added.json()["Export"]["Id"]
    job = await render_latest_job(runtime, export_id)

    [export] = await get_all(api, export_id)
    same_shape(export, SEED_GET_ALL_ANSWER["Exports"][0])
    assert (export["Id"], export["Status"], export["EntityType"]) == (export_id, "Success", "Payment")
    retention = timedelta(days=runtime.settings.scheduler.retention_days)
    assert utc(export["ExpiresUtc"]) == job.created_at + retention
    [file] = export["Files"]
    async with httpx.AsyncClient(timeout=20) as storage:
        download = await storage.get(file["Url"])
    assert download.status_code == 200
    assert file["SizeInBytes"] == len(download.content) == job.files[0].size_in_bytes
    assert [json.loads(line) for line in download.content.splitlines()] == [p.document for p in payments]

    # A new one of the same type may start now that the first is done.
    again = await api.post(ADD, json={**SEED_ADD, "EntityType": "Payment"})
    assert again.status_code == 200, again.text

    # The scheduler's sweep expires it (deleting its files): Expired, no files, when it expired.
    assert await runtime.jobs.expire(job.id)
    [expired] = await get_all(api, export_id)
    same_shape(expired, SEED_GET_ALL_ANSWER["Exports"][3])
    assert (expired["Status"], expired["Files"], expired["ExpiresUtc"]) == (
        "Expired",
        [],
        export["ExpiresUtc"],
    )
    assert utc(export["ExpiresUtc"]) > datetime.now(UTC)


async def test_processing_and_failed_follow_the_job(api: httpx.AsyncClient, runtime: Runtime) -> None:
    added = await api.post(ADD, json={**SEED_ADD, "EntityType": "Reservation"})
    assert added.status_code == 200, added.text
    export_id = added.json()["Export"]["Id"]
    request_id = uuid.UUID(export_id).hex
    job = (await runtime.jobs.latest_for_requests(TENANT, [request_id]))[request_id]
    assert isinstance(job, Job)
    # A renderer took it: the job store's own transition.
    assert await runtime.jobs.start(job.id, timedelta(minutes=1)) is not None
    [processing] = await get_all(api, export_id)
    same_shape(processing, SEED_GET_ALL_ANSWER["Exports"][2])
    assert processing["Status"] == "Processing"
    assert "already inProgress" in mews_error(
        await api.post(ADD, json={**SEED_ADD, "EntityType": "Reservation"}), 403
    )

    cancelled = await api.post(
        f"/jobs/{job.id}/cancel", headers={"X-User-Id": "mews-app", "X-Tenant-Id": TENANT}
    )
    assert cancelled.status_code == 200, cancelled.text
    [failed] = await get_all(api, export_id)
    assert (failed["Status"], failed["Files"], failed["ExpiresUtc"]) == ("Failed", [], None)

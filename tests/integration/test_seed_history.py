"""Seed 004 (DataExportHistory) and ``GET /jobs`` over real HTTP against the real store: the seed's
example answers field by field, paging, numbers, trigger, cancel, refusals and the jobs filters.
A run to completion and its download link are in tests/e2e/test_seed_history.py."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from exporter.adapters.mongo.client import JOBS, connect, database
from exporter.adapters.mongo.numbers import NumericIds
from exporter.contracts.base import utcnow
from exporter.runtime import Runtime
from exporter.settings import GrantSettings, Settings
from renderer.export_job import handle_export_requested
from request_api.seeds import history
from tests.integration.api_server import isolated, serving
from tests.integration.renderer_support import SCHEDULED_AT, body, job_spec, requested, series_item
from tests.integration.test_request_api import body_for, client, create, recurring_body
from tests.seed_history_examples import (
    SEED_ALL,
    SEED_CANCEL,
    SEED_CANCEL_BODY,
    SEED_INSTANCE,
    SEED_PAGED,
    UNTIL_RUN,
    UNTIL_TRANSFERS,
    assert_seed_shape,
)

pytestmark = pytest.mark.servers
HISTORY = "/DataExport/History"
BEFORE_RUN = UNTIL_TRANSFERS | UNTIL_RUN


@dataclass(frozen=True, slots=True)
class Served:
    settings: Settings
    url: str


@pytest.fixture(scope="module")
async def served(servers: Settings) -> AsyncIterator[Served]:
    """bob may read and run every request of acme; one target may have many jobs in flight."""
    read_run = ["exporter:exports:read", "exporter:exports:run"]
    grants = [GrantSettings(tenant="acme", subjects=["user:bob"], actions=read_run)]
    settings = isolated(servers, grants=grants, max_active_jobs_per_user=100, one_active_job_per_target=False)
    async with serving(settings) as url:
        yield Served(settings, url)


@pytest.fixture
async def alice(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with client(served.url, f"alice-{uuid.uuid4().hex[:6]}") as api:
        yield api


async def queued(api: httpx.AsyncClient, name: str | None = None) -> tuple[dict[str, Any], int]:
    """A one-time request due now (its job queued by the create), and its entry's number."""
    name = name or f"history-{uuid.uuid4().hex[:8]}"
    export = await create(api, body_for(uuid.uuid4().hex, name=name))
    jobs = (await api.get("/jobs", params={"requestId": export["id"]})).json()["items"]
    assert len(jobs) == 1
    page = (await api.get(f"{HISTORY}/Paged", params={"pageSize": 1000})).json()["pagedResults"]["items"]
    [entry] = [item for item in page if json.loads(item["parameters"])["name"] == name]
    return export, entry["identity"]


async def test_every_answer_has_the_fields_and_types_of_the_seeds_examples(alice: httpx.AsyncClient) -> None:
    name = f"seed-{uuid.uuid4().hex[:6]}"
    export, number = await queued(alice, name)

    every = await alice.get(f"{HISTORY}/")
    assert every.status_code == 200, every.text
    assert_seed_shape(every.json(), SEED_ALL, BEFORE_RUN)
    paged = await alice.get(f"{HISTORY}/Paged")
    assert_seed_shape(paged.json(), SEED_PAGED, BEFORE_RUN)
    one = await alice.get(f"{HISTORY}/{number}")
    assert_seed_shape(one.json(), SEED_INSTANCE, BEFORE_RUN)
    # The answer models the OpenAPI document shows are what the handlers answer.
    history.Listing.model_validate(every.json())
    history.PagedListing.model_validate(paged.json())
    history.Instance.model_validate(one.json())
    entry = one.json()["instance"]
    assert entry["identity"] == number
    assert entry["dataExportName"] == name
    assert (entry["dataExportHistoryStatusTypeId"], entry["dataExportHistoryStatusTypeName"]) == (1, "Queued")
    assert (entry["storageLocationId"], entry["storageLocationName"]) == (1, "exports")
    assert entry["createdByUserName"] == alice.headers["X-User-Id"]
    assert entry["exportRowCount"] == 0
    assert json.loads(entry["parameters"])["items"] == export["items"]
    # trackingId: a fresh UUID per request, also in the header.
    tracking = {every.json()["trackingId"], paged.json()["trackingId"], one.json()["trackingId"]}
    assert len(tracking) == 3
    assert all(uuid.UUID(t) for t in tracking)
    assert one.headers["X-Tracking-Id"] == one.json()["trackingId"]
    # ... the request's trace id (in its log lines and X-Request-Id), as a UUID.
    assert uuid.UUID(hex=one.headers["X-Request-Id"]) == uuid.UUID(one.json()["trackingId"])
    own = await alice.get(f"{HISTORY}/{number}", headers={"X-Request-Id": "caller-chosen"})
    assert own.headers["X-Request-Id"] == "caller-chosen"
    assert uuid.UUID(own.json()["trackingId"])


async def test_numbers_are_stable_and_per_tenant(alice: httpx.AsyncClient, served: Served) -> None:
    _, number = await queued(alice)
    again = (await alice.get(f"{HISTORY}/{number}")).json()["instance"]
    assert again["identity"] == number
    all_items = (await alice.get(f"{HISTORY}/")).json()["items"]
    assert [item["identity"] for item in all_items if item["identity"] == number] == [number]
    async with client(served.url, "mallory", tenant="globex") as mallory:
        other = await mallory.get(f"{HISTORY}/{number}")
        assert other.status_code == 404
        assert other.json()["trackingId"] == other.headers["X-Tracking-Id"]
        assert set(other.json()) == {"trackingId", "message"}
        assert (await mallory.get(f"{HISTORY}/")).json()["items"] == []
        # A number mallory's tenant gives is its own: it never names acme's job.
        assert (await mallory.post("/DataExport/Trigger", json={"dataExportId": number})).status_code == 404


async def test_paging_bounds_and_exclude_total_count(alice: httpx.AsyncClient) -> None:
    for _ in range(3):
        await queued(alice)
    page = await alice.get(
        f"{HISTORY}/Paged", params={"pageNumber": 2, "pageSize": 2, "excludeTotalCount": "true"}
    )
    assert page.status_code == 200
    body = page.json()
    assert body["pagination"] == {"pageNumber": 2, "pageSize": 2, "excludeTotalCount": True}
    assert "totalCount" not in body["pagedResults"]
    first = (await alice.get(f"{HISTORY}/Paged", params={"pageSize": 2})).json()
    assert first["pagedResults"]["totalCount"] >= 3
    assert len(first["pagedResults"]["items"]) == 2
    ids = {item["identity"] for item in first["pagedResults"]["items"]}
    assert ids.isdisjoint(item["identity"] for item in body["pagedResults"]["items"])
    for params in ({"pageSize": 0}, {"pageSize": 1001}, {"pageNumber": 0}, {"pageNumber": 100_001}):
        refused = await alice.get(f"{HISTORY}/Paged", params=params)
        assert refused.status_code == 400, params
        assert set(refused.json()) == {"trackingId", "message"}
    huge = await alice.get(f"{HISTORY}/{2**53 + 1}")
    assert huge.status_code == 400


async def test_trigger_answers_the_history_id_and_the_triggering_user_is_created_by(
    alice: httpx.AsyncClient, served: Served
) -> None:
    export = await create(alice, recurring_body(uuid.uuid4().hex))
    # A request never seen by the seed's API has no number yet: named by our id.
    triggered = await alice.post("/DataExport/Trigger", json={"dataExportId": export["id"]})
    assert triggered.status_code == 200, triggered.text
    assert_seed_shape(
        {k: v for k, v in triggered.json().items() if k != "dataExportHistoryId"}, SEED_INSTANCE, BEFORE_RUN
    )
    history.Triggered.model_validate(triggered.json())
    number = triggered.json()["dataExportHistoryId"]
    entry = (await alice.get(f"{HISTORY}/{number}")).json()["instance"]
    assert entry == triggered.json()["instance"]
    async with client(served.url, "bob") as bob:  # granted read and run on every request of acme
        again = await bob.post("/DataExport/Trigger", json={"dataExportId": entry["dataExportId"]})
        assert again.status_code == 200, again.text
        bobs = again.json()["instance"]
    assert bobs["dataExportId"] == entry["dataExportId"]
    assert bobs["identity"] != number
    assert bobs["createdByUserName"] == "bob"
    assert bobs["createdByUserId"] != entry["createdByUserId"]
    jobs = (await alice.get("/jobs", params={"requestId": export["id"], "createdBy": "bob"})).json()["items"]
    assert [job["createdBy"] for job in jobs] == ["bob"]
    missing = await alice.post("/DataExport/Trigger", json={"dataExportId": 2**53})
    assert missing.status_code == 404


async def test_cancel_of_a_running_run_answers_the_seeds_create_envelope(
    alice: httpx.AsyncClient, served: Served
) -> None:
    export, number = await queued(alice)
    [job] = (await alice.get("/jobs", params={"requestId": export["id"]})).json()["items"]
    mongo: AsyncMongoClient[dict[str, Any]] = connect(served.settings)
    try:  # a renderer took it
        await database(mongo, served.settings)[JOBS].update_one(
            {"_id": job["id"]}, {"$set": {"status": "inProgress", "startedAt": utcnow()}}
        )
    finally:
        await mongo.close()
    assert (await alice.get(f"{HISTORY}/{number}")).json()["instance"]["dataExportHistoryStatusTypeId"] == 2

    cancelled = await alice.post(f"{HISTORY}/{number}/Cancel", json=SEED_CANCEL_BODY)
    assert cancelled.status_code == 200, cancelled.text
    assert_seed_shape(cancelled.json(), SEED_CANCEL, UNTIL_TRANSFERS | {"storageKey"})
    history.Created.model_validate(cancelled.json())
    [entry] = cancelled.json()["results"]["items"]
    assert (entry["identity"], entry["dataExportHistoryStatusTypeName"]) == (number, "Cancelled")
    again = await alice.post(f"{HISTORY}/{number}/Cancel")
    assert again.status_code == 409
    assert "cancelled" in again.json()["message"]


async def test_a_download_of_a_run_without_files_is_refused_in_the_seeds_shape(
    alice: httpx.AsyncClient,
) -> None:
    _, number = await queued(alice)
    refused = await alice.get(f"{HISTORY}/{number}/Download")
    assert refused.status_code == 409
    assert set(refused.json()) == {"trackingId", "message"}
    assert (await alice.get(f"{HISTORY}/{2**40}/Download")).status_code == 404


async def test_get_jobs_is_tenant_wide_filtered_and_shows_only_readable_jobs(served: Served) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    async with client(served.url, "carol", tenant) as carol, client(served.url, "dave", tenant) as dave:
        first = await create(carol, body_for(uuid.uuid4().hex))
        second = await create(carol, body_for(uuid.uuid4().hex))
        daves = await create(dave, body_for(uuid.uuid4().hex))
        listed = (await carol.get("/jobs")).json()
        assert listed["totalCount"] == 2
        assert {job["requestId"] for job in listed["items"]} == {first["id"], second["id"]}
        assert all(job["createdBy"] == "carol" for job in listed["items"])
        assert [job["requestId"] for job in (await dave.get("/jobs")).json()["items"]] == [daves["id"]]

        by_request = (await carol.get("/jobs", params={"requestId": second["id"]})).json()["items"]
        assert [job["requestId"] for job in by_request] == [second["id"]]
        assert (await carol.get("/jobs", params={"requestId": daves["id"]})).json()["items"] == []
        assert (await carol.get("/jobs", params={"status": "done"})).json()["totalCount"] == 0
        assert (await carol.get("/jobs", params={"status": "notProcessed"})).json()["totalCount"] == 2
        assert (await carol.get("/jobs", params={"createdBy": "dave"})).json()["totalCount"] == 0
        now = utcnow()
        window = {
            "from": (now - timedelta(hours=1)).isoformat(),
            "to": (now + timedelta(hours=1)).isoformat(),
        }
        assert (await carol.get("/jobs", params=window)).json()["totalCount"] == 2
        later = {"from": (now + timedelta(hours=1)).isoformat()}
        assert (await carol.get("/jobs", params=later)).json()["totalCount"] == 0
        paged = (await carol.get("/jobs", params={"pageSize": 1, "excludeTotalCount": "true"})).json()
        assert len(paged["items"]) == 1
        assert "totalCount" not in paged
        for params in (
            {"from": now.isoformat(), "to": now.isoformat()},
            {"status": "nope"},
            {"pageSize": 1001},
            {"createdBy": "x" * 201},
            {"from": "3000-01-01T00:00:00Z"},
            {"from": "0"},
        ):
            assert (await carol.get("/jobs", params=params)).status_code == 400, params
    async with client(served.url, "carol", "elsewhere") as stranger:
        assert (await stranger.get("/jobs")).json()["totalCount"] == 0


async def test_concurrent_first_sights_give_one_number_each(served: Served) -> None:
    mongo: AsyncMongoClient[dict[str, Any]] = connect(served.settings)
    try:
        numbers = NumericIds(database(mongo, served.settings))
        tenant = f"t{uuid.uuid4().hex[:8]}"
        ids = [f"job-{n}" for n in range(20)]
        answers = await asyncio.gather(*(numbers.numbers("job", tenant, ids[n:] + ids[:n]) for n in range(5)))
        assert all(answer == answers[0] for answer in answers)
        assert sorted(answers[0]) == sorted(ids)
        assert len(set(answers[0].values())) == len(ids)
        assert await numbers.id_of("job", tenant, answers[0]["job-7"]) == "job-7"
        assert await numbers.id_of("job", "other", answers[0]["job-7"]) is None
        assert await numbers.numbers("user", tenant, ["job-7"]) == {"job-7": 1}
    finally:
        await mongo.close()


async def test_an_upstream_job_is_created_by_the_principal_its_event_names(runtime: Runtime) -> None:
    item = series_item("weight", SCHEDULED_AT - timedelta(hours=1), SCHEDULED_AT)
    spec = job_spec("acme", body("csv", [item]))
    event = requested(spec).model_copy(update={"actor": "upstream-bot"})
    await handle_export_requested(runtime, event)
    job = await runtime.jobs.get(spec.job_id)
    assert job is not None
    assert (job.owner, job.created_by) == ("alice", "upstream-bot")

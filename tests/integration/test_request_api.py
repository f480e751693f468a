"""The request-api over real HTTP against the real store and broker: every endpoint and refusal."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from exporter.settings import GrantSettings, Settings
from exporter.topics import Topic
from tests.integration.api_server import CSV, finished_with_a_file, isolated, serving
from tests.request_cases import BAD_FIELDS, SEED_000, bad_body, with_field
from tests.topic_reader import json_field, json_object, topic_reader

pytestmark = pytest.mark.servers
ONE_TIME = {**copy.deepcopy(SEED_000), "type": "oneTime"}
ONE_TIME.pop("periodicity")


def body_for(target: str, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(ONE_TIME)
    body["items"][0]["params"]["target"]["value"] = f"urn:cpt:smartdevice:nid:{target}:onoff"
    return {**body, **changes}


def recurring_body(target: str) -> dict[str, Any]:
    """A request that queues nothing at create (a one-time one due now queues its job)."""
    return body_for(target, type="recurring", periodicity="P1D")


def client(base_url: str, user: str, tenant: str = "acme", roles: str = "") -> httpx.AsyncClient:
    headers = {"X-User-Id": user, "X-Tenant-Id": tenant}
    if roles:
        headers["X-User-Roles"] = roles
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=20)


@pytest.fixture(scope="module")
def api_settings(servers: Settings) -> Settings:
    grants = [
        GrantSettings(tenant="acme", subjects=["role:auditor"], actions=["exporter:exports:read"]),
        GrantSettings(
            tenant="acme", subjects=["user:bob"], actions=["exporter:exports:read", "exporter:exports:run"]
        ),
    ]
    # A one-time create queues its job at once: room for every test's creates (the quota's own
    # tests serve the API with a small one).
    return isolated(servers, grants=grants, max_active_jobs_per_user=100, one_active_job_per_target=True)


@pytest.fixture(scope="module")
async def base_url(api_settings: Settings) -> AsyncIterator[str]:
    async with serving(api_settings) as url:
        yield url


@pytest.fixture
async def alice(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client(base_url, f"alice-{uuid.uuid4().hex[:6]}") as api:
        yield api


async def create(api: httpx.AsyncClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await api.post("/exports", json=body or body_for(uuid.uuid4().hex))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# -- create and read ------------------------------------------------------------------------------


async def test_create_answers_seed_000_shape_and_reads_back(alice: httpx.AsyncClient) -> None:
    response = await alice.post("/exports", json=SEED_000)
    assert response.status_code == 201
    created = response.json()
    for field in ("format", "type", "items", "periodicity", "notification", "id", "createdAt", "updatedAt"):
        assert field in created
    assert created["deletedAt"] is None
    assert created["format"]["timezone"] == "UTC"
    assert created["status"] == "active"
    assert len(created["nextRunTimes"]) == 5
    fetched = await alice.get(f"/exports/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


@pytest.mark.parametrize(("path", "value", "field", "words"), BAD_FIELDS)
async def test_each_bad_field_is_a_400_naming_it(
    alice: httpx.AsyncClient, path: str, value: Any, field: str, words: str
) -> None:
    response = await alice.post("/exports", json=bad_body(path, value))
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith(f"{field}: ") or f"; {field}: " in message, message
    assert words in message


async def test_other_malformed_bodies(alice: httpx.AsyncClient, base_url: str) -> None:
    unknown = await alice.post("/exports", json={**SEED_000, "colour": "red"})
    assert unknown.status_code == 400
    assert unknown.json()["message"] == "colour: Extra inputs are not permitted"
    too_often = await alice.post("/exports", json={**SEED_000, "periodicity": "PT10S"})
    assert too_often.status_code == 400
    assert too_often.json()["message"].startswith("periodicity: must be at least 60 seconds")
    unreachable = with_field(
        "notification", {"messages": [{"medium": "discord", "recipients": ["webhook:nowhere"]}]}
    )
    no_webhook = await alice.post("/exports", json=unreachable)
    assert no_webhook.status_code == 400
    assert no_webhook.json()["message"].startswith("notification.messages.0.recipients: ")
    assert "nowhere" in no_webhook.json()["message"]
    not_json = await alice.post("/exports", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    huge = await alice.post("/exports", json={**SEED_000, "name": "x" * 300_000})
    assert huge.status_code == 413
    assert "larger than" in huge.json()["message"]
    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        missing = await anonymous.post("/exports", json=SEED_000)
    assert missing.status_code == 400
    assert missing.json() == {"message": "Missing user identity id"}


# -- tenancy and authorization ----------------------------------------------------------------------


async def test_tenants_are_isolated_and_users_need_grants(alice: httpx.AsyncClient, base_url: str) -> None:
    created = await create(alice, recurring_body(uuid.uuid4().hex))
    path = f"/exports/{created['id']}"
    async with client(base_url, alice.headers["X-User-Id"], tenant="globex") as other_tenant:
        assert (await other_tenant.get(path)).status_code == 404
        assert (await other_tenant.delete(path)).status_code == 404
    async with client(base_url, "mallory") as stranger:
        denied = await stranger.get(path)
        assert denied.status_code == 403
        assert "exporter:exports:read" in denied.json()["message"]
        assert (await stranger.delete(path)).status_code == 403
        assert created["id"] not in [r["id"] for r in (await stranger.get("/exports")).json()["items"]]
    async with client(base_url, "carol", roles="auditor") as auditor:
        assert (await auditor.get(path)).status_code == 200
        assert (await auditor.put(path, json=body_for("x"))).status_code == 403
    async with client(base_url, "bob") as bob:
        assert (await bob.post(f"{path}/run")).status_code == 202
        assert (await bob.delete(path)).status_code == 403


async def test_jwt_identity(servers: Settings) -> None:
    secret = "s3cret-for-tests-only-32-bytes-long!"
    settings = isolated(servers, auth_mode="jwt", jwt_secret=SecretStr(secret))
    now = int(time.time())

    def token(**claims: Any) -> str:
        return jwt.encode(
            {"sub": "dave", "tenant": "acme", "exp": now + 60, **claims}, secret, algorithm="HS256"
        )

    async with serving(settings) as url, httpx.AsyncClient(base_url=url) as api:
        ok = await api.post("/exports", json=SEED_000, headers={"Authorization": f"Bearer {token()}"})
        assert ok.status_code == 201
        assert ok.json()["owner"] == "dave"
        forged = jwt.encode(
            {"sub": "dave", "exp": now + 60}, "another-secret-of-32-bytes-long!!", algorithm="HS256"
        )
        for bad in (forged, token(exp=now - 60), "not-a-token"):
            refused = await api.get("/exports", headers={"Authorization": f"Bearer {bad}"})
            assert refused.status_code == 401
            assert refused.json()["message"].startswith("Invalid bearer token")
        anonymous = await api.get("/exports")
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"] == "Bearer"
        assert anonymous.json() == {"message": "Missing user identity id"}


# -- listing ------------------------------------------------------------------------------------------


async def test_paged_list_with_filters(alice: httpx.AsyncClient) -> None:
    ids = [(await create(alice))["id"] for _ in range(4)]
    recurring = await create(alice, SEED_000)
    page = (await alice.get("/exports", params={"pageSize": 2, "page": 1})).json()
    assert page["totalCount"] == 5
    assert page["pagination"] == {"pageNumber": 1, "pageSize": 2, "excludeTotalCount": False}
    everything = []
    for number in (1, 2, 3):
        everything += (await alice.get("/exports", params={"pageSize": 2, "page": number})).json()["items"]
    assert sorted(r["id"] for r in everything) == sorted([*ids, recurring["id"]])
    no_total = (await alice.get("/exports", params={"excludeTotalCount": "true"})).json()
    assert "totalCount" not in no_total
    only_recurring = (await alice.get("/exports", params={"type": "recurring"})).json()["items"]
    assert [r["id"] for r in only_recurring] == [recurring["id"]]
    assert (await alice.get("/exports", params={"pageSize": 0})).status_code == 400


async def test_batch_get(alice: httpx.AsyncClient) -> None:
    ids = [(await create(alice))["id"] for _ in range(2)]
    answer = (await alice.post("/exports:batchGet", json={"ids": [*ids, "nope"]})).json()
    assert sorted(r["id"] for r in answer["items"]) == sorted(ids)
    assert answer["notFound"] == ["nope"]
    too_many = await alice.post("/exports:batchGet", json={"ids": [str(i) for i in range(1001)]})
    assert too_many.status_code == 400
    assert too_many.json()["message"].startswith("ids: ")


# -- update, delete, run, cancel ----------------------------------------------------------------------


async def test_update_bumps_the_version_and_recomputes_runs(alice: httpx.AsyncClient) -> None:
    created = await create(alice, SEED_000)
    changed = {**SEED_000, "periodicity": "PT1H", "format": {**SEED_000["format"], "timezone": "Europe/Rome"}}
    updated = (await alice.put(f"/exports/{created['id']}", json=changed)).json()
    assert updated["version"] == 2
    assert updated["createdAt"] == created["createdAt"]
    assert updated["updatedAt"] > created["updatedAt"]
    runs = updated["nextRunTimes"]
    assert len(runs) == 5
    assert runs != created["nextRunTimes"]


async def test_delete_is_soft_stops_the_series_and_cancels_queued_jobs(alice: httpx.AsyncClient) -> None:
    created = await create(alice, SEED_000)
    path = f"/exports/{created['id']}"
    queued = (await alice.post(f"{path}/run")).json()
    deleted = (await alice.delete(path)).json()
    assert deleted["deletedAt"] is not None
    assert deleted["status"] == "deleted"
    assert deleted["nextRunTimes"] == []
    assert (await alice.get(path)).json()["deletedAt"] == deleted["deletedAt"]
    assert (await alice.get(f"/jobs/{queued['id']}")).json()["status"] == "cancelled"
    for gone in (alice.put(path, json=SEED_000), alice.delete(path), alice.post(f"{path}/run")):
        response = await gone
        assert response.status_code == 410
        assert "deleted" in response.json()["message"]


def small_quota(servers: Settings) -> Settings:
    return isolated(servers, max_active_jobs_per_user=3, one_active_job_per_target=True)


async def test_run_quota_target_conflict_and_cancel(servers: Settings) -> None:
    async with serving(small_quota(servers)) as url, client(url, "erin") as erin:
        # A one-time request due now is queued with its create: the quota and the target rule count it.
        first = await create(erin)
        assert (first["status"], first["lastRunAt"]) == ("finished", first["createdAt"])
        assert first["nextRunTimes"] == []
        [job] = (await erin.get(f"/exports/{first['id']}/jobs")).json()["items"]
        assert job["status"] == "notProcessed"
        busy = await erin.post(f"/exports/{first['id']}/run")
        assert busy.status_code == 409
        assert busy.json()["jobId"] == job["id"]
        await create(erin)
        # A recurring request queues nothing at create; its runs count once queued.
        over = await create(erin, recurring_body("QUOTA"))
        assert over["nextRunTimes"]
        assert (await erin.post(f"/exports/{over['id']}/run")).status_code == 202
        refused = await erin.post(f"/exports/{over['id']}/run")
        assert refused.status_code == 429
        assert refused.json() == {"message": "Maximum number of queued exports reached"}
        assert refused.headers["Retry-After"] == "30"
        assert (await erin.post("/exports", json=body_for("QUOTA2"))).status_code == 429

        cancelled = await erin.post(f"/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        again = await erin.post(f"/jobs/{job['id']}/cancel")
        assert again.status_code == 409
        assert (await erin.post("/exports", json=body_for("QUOTA2"))).status_code == 201


async def test_concurrent_admissions_keep_the_quota_and_one_job_per_target(servers: Settings) -> None:
    async with serving(small_quota(servers)) as url:
        async with client(url, "frank") as frank:
            answers = await asyncio.gather(
                *(frank.post("/exports", json=body_for(uuid.uuid4().hex)) for _ in range(12))
            )
            assert sorted(answer.status_code for answer in answers) == [201] * 3 + [429] * 9
            created = [answer.json() for answer in answers if answer.status_code == 201]
            queued = [(await frank.get(f"/exports/{c['id']}/jobs")).json()["totalCount"] for c in created]
            assert queued == [1, 1, 1]
        async with client(url, "grace") as grace:
            shared = body_for("SHARED")
            answers = await asyncio.gather(*(grace.post("/exports", json=shared) for _ in range(8)))
            [winner] = [answer.json() for answer in answers if answer.status_code == 201]
            [job] = (await grace.get(f"/exports/{winner['id']}/jobs")).json()["items"]
            losers = [answer for answer in answers if answer.status_code != 201]
            assert {(answer.status_code, answer.json()["jobId"]) for answer in losers} == {(409, job["id"])}
            # "Run now" on a request with no job yet races the same way.
            recurring = await create(grace, recurring_body("RUNS"))
            runs = await asyncio.gather(*(grace.post(f"/exports/{recurring['id']}/run") for _ in range(6)))
            [started] = [run.json() for run in runs if run.status_code == 202]
            refused = {(run.status_code, run.json()["jobId"]) for run in runs if run.status_code != 202}
            assert refused == {(409, started["id"])}


async def test_idempotency_key(alice: httpx.AsyncClient, base_url: str) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await alice.post("/exports", json=SEED_000, headers=key)
    second = await alice.post("/exports", json=json.loads(json.dumps(SEED_000)), headers=key)
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    other = await alice.post("/exports", json={**SEED_000, "name": "other"}, headers=key)
    assert other.status_code == 422
    async with client(base_url, "someone-else") as someone:
        assert (await someone.post("/exports", json=SEED_000, headers=key)).json()["id"] != first.json()["id"]


async def test_a_damaged_job_is_listed_by_its_id_and_problem_beside_the_others(
    alice: httpx.AsyncClient, api_settings: Settings
) -> None:
    path = f"/exports/{(await create(alice))['id']}"
    [damaged] = (await alice.get(f"{path}/jobs")).json()["items"]
    jobs = AsyncMongoClient[dict[str, Any]](api_settings.mongo.uri.get_secret_value())[
        api_settings.mongo.database
    ]
    await jobs.jobs.update_one({"_id": damaged["id"]}, {"$set": {"status": "done", "rowCount": "many"}})
    run = await alice.post(f"{path}/run")
    assert run.status_code == 202

    listed = await alice.get(f"{path}/jobs")

    assert listed.status_code == 200
    assert listed.json()["totalCount"] == 2
    items = {item["id"]: item for item in listed.json()["items"]}
    problem = "its stored fields no longer validate: rowCount"
    assert items[damaged["id"]] == {"id": damaged["id"], "problem": problem}
    assert items[run.json()["id"]] == run.json()


# -- downloads ----------------------------------------------------------------------------------------


async def test_download_link_json_redirect_and_gone(
    alice: httpx.AsyncClient, api_settings: Settings, tmp_path: Path
) -> None:
    created = await create(alice)
    [job] = (await alice.get(f"/exports/{created['id']}/jobs")).json()["items"]
    link = f"/jobs/{job['id']}/download"
    assert (await alice.get(link)).status_code == 409
    await finished_with_a_file(api_settings, created["id"], job["id"], tmp_path)
    jobs = AsyncMongoClient[dict[str, Any]](api_settings.mongo.uri.get_secret_value())[
        api_settings.mongo.database
    ]

    as_json = await alice.get(link, headers={"Accept": "application/json"})
    assert as_json.status_code == 200
    assert "X-Amz-Expires=30" in as_json.json()["url"]
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(as_json.json()["url"])).content == CSV
    redirect = await alice.get(link)
    assert redirect.status_code == 307
    assert redirect.headers["location"].startswith(f"http://{api_settings.storage.endpoint}/")
    assert (await alice.get(link, params={"file": 3})).status_code == 404
    await jobs.jobs.update_one({"_id": job["id"]}, {"$set": {"status": "expired"}})
    expired = await alice.get(link)
    assert expired.status_code == 410
    assert "expired" in expired.json()["message"]


# -- IAM events ---------------------------------------------------------------------------------------


async def iam_events(settings: Settings, request_id: str, expected: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with topic_reader(settings, Topic.IAM_POLICY_UPDATED) as consumer:
        deadline = asyncio.get_running_loop().time() + 20
        quiet_since = None
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            records = [r.value for rs in batch.values() for r in rs]
            resource = f":export:{request_id}"
            events += [
                json_object(value)
                for value in records
                if str(json_field(value, "data", "resource")).endswith(resource)
            ]
            now = asyncio.get_running_loop().time()
            if records:
                quiet_since = None
            elif len(events) >= expected:
                quiet_since = quiet_since or now
                if now - quiet_since > 1.5:  # nothing more after the expected ones
                    break
        return events


async def test_every_change_emits_exactly_one_iam_event(
    alice: httpx.AsyncClient, api_settings: Settings
) -> None:
    created = await create(alice, SEED_000)
    path = f"/exports/{created['id']}"
    await alice.put(path, json=SEED_000)
    job = (await alice.post(f"{path}/run")).json()
    await alice.post(f"/jobs/{job['id']}/cancel")
    await alice.delete(path)
    events = await iam_events(api_settings, created["id"], 5)
    assert [e["data"]["action"] for e in events] == ["create", "update", "run", "cancel", "delete"]
    assert len({e["id"] for e in events}) == 5
    create_event = events[0]
    assert create_event["data"]["owner"] == alice.headers["X-User-Id"]
    assert create_event["data"]["tenant"] == "acme"
    assert create_event["data"]["resource"] == f"urn:exporter:acme:export:{created['id']}"
    assert [e["data"]["version"] for e in events] == [1, 2, 2, 2, 3]

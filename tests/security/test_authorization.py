"""Every route of the request-api tried by every kind of caller, over real HTTP.

Callers: the owner; a user of the same tenant without any grant; one who may only read; and a
user of another tenant, named like the owner and granted everything there. Another tenant's
requests and jobs do not exist for the last one: always 404, never 403, never data.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from exporter.contracts.job import JobFile
from exporter.domain.access import Action
from exporter.settings import GrantSettings, Settings
from exporter.settings.notifier import TelegramSettings, TenantDestinations
from tests.integration.api_server import isolated, serving
from tests.integration.test_request_api import body_for, client, recurring_body

pytestmark = pytest.mark.servers

OWNER, STRANGER, READER, OTHER_TENANT = "owner", "stranger", "reader", "other tenant"
EVERY_ACTION = [action.value for action in Action]
NAME = "a name only readers may see"


def callers(base_url: str, owner: str) -> dict[str, httpx.AsyncClient]:
    return {
        OWNER: client(base_url, owner),
        STRANGER: client(base_url, f"mallory-{owner}"),
        READER: client(base_url, f"carol-{owner}", roles="reader"),
        # The owner's very user id, in another tenant where a role may do anything.
        OTHER_TENANT: client(base_url, owner, tenant="globex", roles="admin"),
    }


@pytest.fixture(scope="module")
def api_settings(servers: Settings) -> Settings:
    grants = [
        GrantSettings(tenant="acme", subjects=["role:reader"], actions=["exporter:exports:read"]),
        GrantSettings(tenant="globex", subjects=["role:admin"], actions=EVERY_ACTION),
    ]
    return isolated(servers, grants=grants, max_active_jobs_per_user=1000, one_active_job_per_target=False)


@pytest.fixture(scope="module")
async def base_url(api_settings: Settings) -> AsyncIterator[str]:
    async with serving(api_settings) as url:
        yield url


@dataclass(frozen=True)
class Subject:
    """A fresh request of its owner's, with a queued job and a done one (that has a file)."""

    request_id: str
    queued_job: str
    done_job: str


async def subject(owner: httpx.AsyncClient, settings: Settings) -> Subject:
    created = await owner.post("/exports", json={**recurring_body(uuid.uuid4().hex), "name": NAME})
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    jobs = []
    for _ in range(2):
        run = await owner.post(f"/exports/{request_id}/run")
        assert run.status_code == 202, run.text
        jobs.append(run.json()["id"])
    key = f"acme/{request_id}/{jobs[1]}/data.csv"
    file = JobFile(key=key, name="data.csv", size_in_bytes=1, rows=1, checksum="-", content_type="text/csv")
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo.uri.get_secret_value())
    try:
        await mongo[settings.mongo.database].jobs.update_one(
            {"_id": jobs[1]}, {"$set": {"status": "done", "files": [file.to_document()]}}
        )
    finally:
        await mongo.close()
    return Subject(request_id, jobs[0], jobs[1])


def replacement() -> dict[str, Any]:
    body = copy.deepcopy(recurring_body(uuid.uuid4().hex))
    return {**body, "name": "changed"}


# (method, path, json body) by route; {r} the request, {q} its queued job, {d} its done job.
ROUTES: dict[str, tuple[str, str]] = {
    "read": ("GET", "/exports/{r}"),
    "update": ("PUT", "/exports/{r}"),
    "delete": ("DELETE", "/exports/{r}"),
    "run": ("POST", "/exports/{r}/run"),
    "job list": ("GET", "/exports/{r}/jobs"),
    "job read": ("GET", "/jobs/{q}"),
    "cancel": ("POST", "/jobs/{q}/cancel"),
    "download": ("GET", "/jobs/{d}/download"),
}
# The status each caller gets on each route.
EXPECTED: dict[str, dict[str, int]] = {
    "read": {OWNER: 200, STRANGER: 403, READER: 200, OTHER_TENANT: 404},
    "update": {OWNER: 200, STRANGER: 403, READER: 403, OTHER_TENANT: 404},
    "delete": {OWNER: 200, STRANGER: 403, READER: 403, OTHER_TENANT: 404},
    "run": {OWNER: 202, STRANGER: 403, READER: 403, OTHER_TENANT: 404},
    "job list": {OWNER: 200, STRANGER: 403, READER: 200, OTHER_TENANT: 404},
    "job read": {OWNER: 200, STRANGER: 403, READER: 200, OTHER_TENANT: 404},
    "cancel": {OWNER: 200, STRANGER: 403, READER: 403, OTHER_TENANT: 404},
    "download": {OWNER: 200, STRANGER: 403, READER: 403, OTHER_TENANT: 404},
}
CASES = [(route, caller) for route in ROUTES for caller in (OWNER, STRANGER, READER, OTHER_TENANT)]


async def state(owner: httpx.AsyncClient, target: Subject) -> tuple[Any, ...]:
    """What a refused call must leave as it was: the request's version, deletion and jobs."""
    request = (await owner.get(f"/exports/{target.request_id}")).json()
    jobs = (await owner.get(f"/exports/{target.request_id}/jobs")).json()["items"]
    return request["version"], request["deletedAt"], sorted((job["id"], job["status"]) for job in jobs)


@pytest.mark.parametrize(("route", "caller"), CASES, ids=[f"{r}-{c}" for r, c in CASES])
async def test_each_route_for_each_caller(
    base_url: str, api_settings: Settings, route: str, caller: str
) -> None:
    people = callers(base_url, f"alice-{uuid.uuid4().hex[:6]}")
    try:
        target = await subject(people[OWNER], api_settings)
        before = await state(people[OWNER], target)
        method, template = ROUTES[route]
        path = template.format(r=target.request_id, q=target.queued_job, d=target.done_job)
        body = replacement() if method == "PUT" else None
        answer = await people[caller].request(method, path, json=body, headers={"Accept": "application/json"})
        expected = EXPECTED[route][caller]
        assert answer.status_code == expected, answer.text
        if expected >= 400:
            assert set(answer.json()) == {"message"}
            assert NAME not in answer.text
            if expected == 403:
                assert answer.json()["message"].startswith("User not authorized: ")
            assert await state(people[OWNER], target) == before
    finally:
        for api in people.values():
            await api.aclose()


async def test_lists_and_batch_get_show_only_what_the_caller_may_read(
    base_url: str, api_settings: Settings
) -> None:
    people = callers(base_url, f"alice-{uuid.uuid4().hex[:6]}")
    try:
        target = await subject(people[OWNER], api_settings)
        mine = await people[OTHER_TENANT].post("/exports", json=body_for(uuid.uuid4().hex))
        assert mine.status_code == 201
        sees = {OWNER: True, STRANGER: False, READER: True, OTHER_TENANT: False}
        for caller, readable in sees.items():
            api = people[caller]
            for status in (None, "active", "finished", "deleted"):
                params = {"pageSize": 1000} | ({"status": status} if status else {})
                listed = (await api.get("/exports", params=params)).json()["items"]
                shown = [item["id"] for item in listed]
                assert (target.request_id in shown) == (readable and status in {None, "active"}), caller
                tenants = {item["tenant"] for item in listed}
                assert tenants <= {"globex" if caller == OTHER_TENANT else "acme"}, caller
            batch = (await api.post("/exports:batchGet", json={"ids": [target.request_id]})).json()
            assert [item["id"] for item in batch["items"]] == ([target.request_id] if readable else [])
            assert batch["notFound"] == ([] if readable else [target.request_id])
        # The other tenant's own request is theirs alone, even for the owner's namesake.
        other_id = mine.json()["id"]
        batch = (await people[OWNER].post("/exports:batchGet", json={"ids": [other_id]})).json()
        assert batch == {"items": [], "notFound": [other_id]}
        assert (await people[OWNER].get(f"/exports/{other_id}")).status_code == 404
    finally:
        for api in people.values():
            await api.aclose()


async def test_create_policy_grant_needs_a_create_grant_on_every_request(servers: Settings) -> None:
    grants = [
        GrantSettings(tenant="acme", subjects=["user:creator"], actions=["exporter:exports:create"]),
        GrantSettings(tenant="acme", subjects=["role:maker"], actions=["exporter:exports:create"]),
        # Neither one request's grant nor another tenant's lets anyone create in acme.
        GrantSettings(
            tenant="acme", subjects=["user:narrow"], actions=["exporter:exports:create"], resource="r1"
        ),
        GrantSettings(tenant="globex", subjects=["user:abroad"], actions=["exporter:exports:create"]),
    ]
    settings = isolated(servers, grants=grants, create_policy="grant", max_active_jobs_per_user=100)
    expected = {("creator", ""): 201, ("mia", "maker"): 201, ("someone", ""): 403}
    expected |= {("narrow", ""): 403, ("abroad", ""): 403}
    async with serving(settings) as url:
        for (user, roles), status in expected.items():
            async with client(url, user, roles=roles) as api:
                answer = await api.post("/exports", json=body_for(uuid.uuid4().hex))
                assert answer.status_code == status, (user, roles, answer.text)
                if status == 403:
                    assert answer.json() == {
                        "message": "User not authorized: exporter:exports:create is not granted"
                    }
                    assert (await api.get("/exports")).json()["items"] == []


async def test_create_policy_any_user_lets_every_identified_user_create(base_url: str) -> None:
    async with client(base_url, f"newcomer-{uuid.uuid4().hex[:6]}", tenant="initech") as api:
        answer = await api.post("/exports", json=body_for(uuid.uuid4().hex))
        assert answer.status_code == 201
        assert (answer.json()["tenant"], answer.json()["owner"]) == ("initech", api.headers["X-User-Id"])


# -- notification destinations (an update grant must not redirect files) ----------------------------


def notified(recipients: list[str], **message: Any) -> dict[str, Any]:
    body = recurring_body("DESTINATIONS")
    entry = {"policy": "always", "medium": "email", "title": "t", "text": "x", "recipients": recipients}
    return {**body, "notification": {"messages": [entry | message]}}


OWNERS_ADDRESSES = ["alice@example.com", "team@example.com"]
REDIRECTIONS = {
    "replaced recipients": notified(["bob@evil.example"]),
    "added recipient": notified([*OWNERS_ADDRESSES, "bob@evil.example"]),
    "emptied recipients": notified([]),
    "changed medium": notified(["-1001234567890"], medium="telegram"),
    "added message": {
        **notified(OWNERS_ADDRESSES),
        "notification": {
            "messages": [
                notified(OWNERS_ADDRESSES)["notification"]["messages"][0],
                {"medium": "email", "recipients": ["bob@evil.example"]},
            ]
        },
    },
    "no message left": {**notified(OWNERS_ADDRESSES), "notification": {"messages": []}},
}
HARMLESS = {
    "titles and texts": notified(OWNERS_ADDRESSES, title="new title", text="new text", policy="onFailure"),
    "recipients reordered": notified(list(reversed(OWNERS_ADDRESSES))),
    "everything else": {**notified(OWNERS_ADDRESSES), "name": "renamed", "periodicity": "PT2H"},
}


@pytest.fixture(scope="module")
async def editors_url(servers: Settings) -> AsyncIterator[str]:
    update = [Action.READ, Action.UPDATE]
    grants = [
        GrantSettings(tenant="acme", subjects=["user:bob"], actions=update),
        GrantSettings(tenant="acme", subjects=["role:postmaster"], actions=[*update, Action.NOTIFY]),
    ]
    settings = isolated(servers, grants=grants)
    telegram = TelegramSettings(bot_token=SecretStr("123:telegram-token"))
    # Alice's addresses and bob's (the attacker's) are all deliverable: what stops bob is the rule.
    tenants = {
        **settings.notifier.tenants,  # the owners' default contact, for emptied recipients
        "acme": TenantDestinations(email_domains=["*"], telegram_chats=["-1001234567890"]),
    }
    notifier = settings.notifier.model_copy(update={"telegram": telegram, "tenants": tenants})
    async with serving(settings.model_copy(update={"notifier": notifier})) as url:
        yield url


@pytest.mark.parametrize("change", list(REDIRECTIONS))
async def test_an_update_grant_cannot_change_where_files_go(editors_url: str, change: str) -> None:
    alice, bob = client(editors_url, f"alice-{uuid.uuid4().hex[:6]}"), client(editors_url, "bob")
    async with alice, bob:
        created = (await alice.post("/exports", json=notified(OWNERS_ADDRESSES))).json()
        path = f"/exports/{created['id']}"
        refused = await bob.put(path, json=REDIRECTIONS[change])
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"].startswith("User not authorized: exporter:exports:notify")
        assert (await alice.get(path)).json() == created
        async with client(editors_url, "dora", roles="postmaster") as postmaster:
            assert (await postmaster.put(path, json=REDIRECTIONS[change])).status_code == 200
        assert (await alice.put(path, json=notified(["alice@example.com"]))).status_code == 200


@pytest.mark.parametrize("change", list(HARMLESS))
async def test_an_update_grant_still_changes_everything_else(editors_url: str, change: str) -> None:
    alice, bob = client(editors_url, f"alice-{uuid.uuid4().hex[:6]}"), client(editors_url, "bob")
    async with alice, bob:
        created = (await alice.post("/exports", json=notified(OWNERS_ADDRESSES))).json()
        updated = await bob.put(f"/exports/{created['id']}", json=HARMLESS[change])
        assert updated.status_code == 200, updated.text
        assert updated.json()["version"] == 2

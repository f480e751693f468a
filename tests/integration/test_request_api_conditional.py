"""The request-api's conditional requests and headers over real HTTP against the real store:
``Location`` on 201, ``ETag`` on reads and writes, ``If-None-Match`` → 304, ``If-Match`` → 412
on a stale version (checked and written in one guarded update), and ``GET /version``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any

import httpx
import pytest

from exporter.settings import Settings
from tests.integration.api_server import isolated, serving
from tests.integration.test_request_api import body_for, client, create, recurring_body

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
async def base_url(servers: Settings) -> AsyncIterator[str]:
    async with serving(isolated(servers, max_active_jobs_per_user=100, build_commit="0123abc")) as url:
        yield url


@pytest.fixture
async def alice(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client(base_url, f"alice-{uuid.uuid4().hex[:6]}") as api:
        yield api


async def test_a_create_answers_where_the_request_is_and_its_version(alice: httpx.AsyncClient) -> None:
    body = recurring_body(uuid.uuid4().hex)
    created = await alice.post("/exports", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert created.status_code == 201
    assert created.headers["Location"] == f"/exports/{created.json()['id']}"
    assert created.headers["ETag"] == '"1"'
    read = await alice.get(created.headers["Location"])
    assert read.status_code == 200
    assert read.headers["ETag"] == '"1"'


async def test_a_replayed_create_answers_the_same_location(alice: httpx.AsyncClient) -> None:
    body, key = recurring_body(uuid.uuid4().hex), {"Idempotency-Key": uuid.uuid4().hex}
    first = await alice.post("/exports", json=body, headers=key)
    again = await alice.post("/exports", json=body, headers=key)
    assert again.status_code == 201
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]


async def test_if_none_match_answers_304_until_the_request_changes(alice: httpx.AsyncClient) -> None:
    created = await create(alice, recurring_body(uuid.uuid4().hex))
    path = f"/exports/{created['id']}"
    unchanged = await alice.get(path, headers={"If-None-Match": '"1"'})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["ETag"] == '"1"'
    assert (await alice.get(path, headers={"If-None-Match": 'W/"1", "9"'})).status_code == 304
    edit = await alice.put(path, json=recurring_body(uuid.uuid4().hex), headers={"If-None-Match": "*"})
    assert edit.status_code == 200  # a write is never a 304: it has happened
    assert edit.headers["ETag"] == '"2"'
    changed = await alice.get(path, headers={"If-None-Match": '"1"'})
    assert changed.status_code == 200
    assert changed.json()["version"] == 2


async def test_if_match_on_a_stale_version_answers_412_and_changes_nothing(alice: httpx.AsyncClient) -> None:
    created = await create(alice, recurring_body(uuid.uuid4().hex))
    path = f"/exports/{created['id']}"
    edited = await alice.put(path, json=recurring_body(uuid.uuid4().hex), headers={"If-Match": '"1"'})
    assert edited.status_code == 200
    assert edited.headers["ETag"] == '"2"'
    stale_edit = await alice.put(path, json=recurring_body("stale"), headers={"If-Match": '"1"'})
    assert stale_edit.status_code == 412
    assert "version 2" in stale_edit.json()["message"]
    weak = await alice.put(path, json=recurring_body("weak"), headers={"If-Match": 'W/"2"'})
    assert weak.status_code == 412  # If-Match compares strongly (RFC 9110 §13.1.1)
    stale_delete = await alice.delete(path, headers={"If-Match": '"1"'})
    assert stale_delete.status_code == 412
    assert set(stale_delete.json()) == {"message"}
    current = await alice.get(path)
    assert current.json() == edited.json()
    deleted = await alice.delete(path, headers={"If-Match": '"2"'})
    assert deleted.status_code == 200
    assert deleted.headers["ETag"] == '"3"'
    assert deleted.json()["status"] == "deleted"


async def test_without_if_match_a_write_applies_to_the_current_version(alice: httpx.AsyncClient) -> None:
    created = await create(alice, recurring_body(uuid.uuid4().hex))
    path = f"/exports/{created['id']}"
    assert (await alice.put(path, json=recurring_body(uuid.uuid4().hex))).status_code == 200
    anything = await alice.put(path, json=recurring_body(uuid.uuid4().hex), headers={"If-Match": "*"})
    assert anything.status_code == 200
    assert (await alice.delete(path)).headers["ETag"] == '"4"'


async def test_of_concurrent_edits_of_one_version_exactly_one_wins(alice: httpx.AsyncClient) -> None:
    """The version check and the write are one guarded update: however the edits interleave,
    one applies and every other answers 412."""
    created = await create(alice, recurring_body(uuid.uuid4().hex))
    path = f"/exports/{created['id']}"
    names = [f"edit-{n}" for n in range(6)]
    stale = {"If-Match": '"1"'}
    bodies = [body_for("t", type="recurring", periodicity="P1D", name=name) for name in names]
    answers = await asyncio.gather(*(alice.put(path, json=body, headers=stale) for body in bodies))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [412] * (len(names) - 1)
    [winner] = [answer.json() for answer in answers if answer.status_code == 200]
    current = (await alice.get(path)).json()
    assert current["version"] == 2
    assert current["name"] == winner["name"]


@pytest.mark.parametrize("value", ["1", '"1" "2"', '"' + "9" * 1001 + '"'])
async def test_a_malformed_or_oversized_if_match_is_a_400(alice: httpx.AsyncClient, value: str) -> None:
    created = await create(alice, recurring_body(uuid.uuid4().hex))
    path = f"/exports/{created['id']}"
    answer = await alice.put(path, json=recurring_body("x"), headers={"If-Match": value})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("If-Match: must be")


async def test_a_job_is_tagged_by_its_content_and_304_until_it_moves(alice: httpx.AsyncClient) -> None:
    created = await create(alice, recurring_body(uuid.uuid4().hex))
    run = await alice.post(f"/exports/{created['id']}/run")
    assert run.status_code == 202
    path = f"/jobs/{run.json()['id']}"
    read = await alice.get(path)
    tag = read.headers["ETag"]
    unchanged = await alice.get(path, headers={"If-None-Match": tag})
    assert unchanged.status_code == 304
    assert unchanged.headers["ETag"] == tag
    cancelled = await alice.post(f"{path}/cancel")
    assert cancelled.status_code == 200
    moved = await alice.get(path, headers={"If-None-Match": tag})
    assert moved.status_code == 200
    assert moved.headers["ETag"] != tag
    assert moved.json()["status"] == "cancelled"


async def test_version_over_http(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        answer = await anonymous.get("/version")
    info: dict[str, Any] = answer.json()
    assert answer.status_code == 200
    assert info == {
        "service": "exporter",
        "version": version("exporter"),
        "apiVersion": "1.0.0",
        "commit": "0123abc",
    }

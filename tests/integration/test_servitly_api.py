"""Seed 001's ``/data/dataExports`` over real HTTP against the real store and broker, with the
seed's bearer tokens and ``X-Servitly-Tenant`` header: its bodies and refusals, field by field.
No renderer runs here, so a data-export stays PENDING (tests/e2e/test_servitly.py completes one)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from pydantic import SecretStr

from exporter.settings import Settings
from tests.integration.api_server import isolated, serving
from tests.servitly_cases import SEED_001_EXAMPLES, assert_data_export, seed_001_body

pytestmark = pytest.mark.servers
SECRET = "s3cret-for-servitly-tests-32-bytes!"
PATH = "/data/dataExports"
START, END = 1772438400000, 1772442000000


def token(user: str, tenant: str, **claims: Any) -> str:
    claims = {"sub": user, "tenant": tenant, "exp": int(time.time()) + 300, **claims}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def headers(tenant: str, user: str = "dave", header_tenant: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, tenant)}", "X-Servitly-Tenant": header_tenant or tenant}


@pytest.fixture(scope="module")
async def base_url(servers: Settings) -> AsyncIterator[str]:
    settings = isolated(
        servers, auth_mode="jwt", jwt_secret=SecretStr(SECRET), one_active_job_per_target=True
    )
    async with serving(settings) as url:
        yield url


@pytest.fixture
async def api(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=20) as client:
        yield client


def new_tenant() -> str:
    """One tenant per test: the tenant's one bulk export at a time would couple them otherwise."""
    return f"acme-{uuid.uuid4().hex[:8]}"


async def test_the_seed_body_is_scheduled_and_its_details_read_back(api: httpx.AsyncClient) -> None:
    tenant = new_tenant()
    body = seed_001_body(START, END)
    created = await api.post(PATH, json=body, headers=headers(tenant))
    assert created.status_code == 201, created.text
    answer = created.json()
    assert_data_export(answer, body)
    assert answer["state"] == "PENDING"

    details = await api.get(f"{PATH}/{answer['id']}", headers=headers(tenant))
    assert details.status_code == 200, details.text
    assert_data_export(details.json(), body, details=True)
    assert details.json()["url"] is None  # only a completed data-export has an archive
    # The same request, seen through our own API: the one core behind both.
    ours = await api.get(f"/exports/{answer['id']}", headers=headers(tenant))
    assert ours.json()["items"][0]["things"]["productModelId"] == "pm-1"


async def test_one_bulk_export_at_a_time_per_tenant_even_when_asked_at_once(api: httpx.AsyncClient) -> None:
    tenant = new_tenant()
    bodies = [seed_001_body(START, END, customerId=f"customer-{n}") for n in range(4)]
    answers = await asyncio.gather(
        *(api.post(PATH, json=body, headers=headers(tenant, user=f"u{n}")) for n, body in enumerate(bodies))
    )
    assert sorted(answer.status_code for answer in answers) == [201, 429, 429, 429]
    for refused in (answer for answer in answers if answer.status_code == 429):
        assert refused.json()["message"].startswith(
            "API call rate limit exeeded: only one bulk export can be scheduled at a time"
        )
        assert list(refused.json()) == ["message"]
    # Another tenant is not held up.
    assert (await api.post(PATH, json=bodies[0], headers=headers(new_tenant()))).status_code == 201


async def test_the_tenant_header_must_be_the_callers(api: httpx.AsyncClient) -> None:
    tenant = new_tenant()
    created = await api.post(PATH, json=seed_001_body(START, END), headers=headers(tenant))
    export_id = created.json()["id"]
    other = headers(tenant, header_tenant="globex")
    for refused in (
        await api.post(PATH, json=seed_001_body(START, END), headers=other),
        await api.get(f"{PATH}/{export_id}", headers=other),
    ):
        assert refused.status_code == 403
        assert refused.json() == {
            "message": "User not authorized: X-Servitly-Tenant is not the caller's tenant"
        }
    # Another tenant's token, with its own tenant in the header: the data-export does not exist.
    stranger = await api.get(f"{PATH}/{export_id}", headers=headers(new_tenant()))
    assert stranger.status_code == 404
    missing = await api.post(
        PATH, json=seed_001_body(START, END), headers={"Authorization": other["Authorization"]}
    )
    assert missing.status_code == 400
    assert missing.json()["message"] == "header.X-Servitly-Tenant: Field required"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", f"Bearer {token('dave', 'acme', exp=int(time.time()) - 60)}"],
)
async def test_no_or_a_bad_token_is_the_seeds_401(api: httpx.AsyncClient, authorization: str | None) -> None:
    sent = {"X-Servitly-Tenant": "acme"} | ({"Authorization": authorization} if authorization else {})
    refused = await api.post(PATH, json=seed_001_body(START, END), headers=sent)
    assert refused.status_code == 401
    assert refused.json() == {"message": "User not authenticated"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (SEED_001_EXAMPLES, "'startTimestamp' must be before 'endTimestamp'"),
        (seed_001_body(START, END, timestampFormat="RFC_3339"), "timestampFormat: Input should be"),
        (
            seed_001_body(START, END, dateTime=4102444800000),
            "dateTime: a data-export runs when it is scheduled",
        ),
        (seed_001_body(START, END, thingFileName="a/b"), "thingFileName: must not contain path separators"),
    ],
)
async def test_invalid_bodies_are_the_seeds_400(
    api: httpx.AsyncClient, body: dict[str, Any], message: str
) -> None:
    refused = await api.post(PATH, json=body, headers=headers(new_tenant()))
    assert refused.status_code == 400
    assert list(refused.json()) == ["message"]
    assert message in refused.json()["message"]


async def test_a_request_that_is_not_a_data_export_is_not_found(api: httpx.AsyncClient) -> None:
    tenant = new_tenant()
    series = {
        "type": "recurring",
        "periodicity": "P1D",
        "format": {"extension": "csv"},
        "items": [{"params": {"target": {"value": "urn:cpt:smartdevice:nid:D1:temperature"}}}],
    }
    created = await api.post("/exports", json=series, headers=headers(tenant))
    assert created.status_code == 201, created.text
    refused = await api.get(f"{PATH}/{created.json()['id']}", headers=headers(tenant))
    assert refused.status_code == 404


async def test_a_retried_create_with_its_idempotency_key_is_the_same_data_export(
    api: httpx.AsyncClient,
) -> None:
    tenant = new_tenant()
    sent = headers(tenant) | {"Idempotency-Key": "servitly-retry-1"}
    first = await api.post(PATH, json=seed_001_body(START, END), headers=sent)
    again = await api.post(PATH, json=seed_001_body(START, END), headers=sent)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json()  # not a second export, nor the one-at-a-time refusal

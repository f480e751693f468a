"""Grants from the IAM service: published on ``iam.policy-updated``, kept by the ingestor process,
obeyed by the request-api process."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from exporter.local.demo import publish
from exporter.local.services import LocalServices
from exporter.settings import Settings
from exporter.topics import Topic
from tests.integration.test_messaging import read_topic
from tests.integration.test_request_api import client, create, recurring_body

pytestmark = pytest.mark.servers


def grant_event(tenant: str, grant_id: str, version: int, resource: str, **data: Any) -> dict[str, Any]:
    return {
        "id": f"{grant_id}:v{version}",
        "type": "iam.grant.changed.v1",
        "source": "iam",
        "tenant": tenant,
        "data": {
            "grantId": grant_id,
            "tenant": tenant,
            "subjects": ["user:bob"],
            "actions": ["exporter:exports:read"],
            "resource": resource,
            "version": version,
            **data,
        },
    }


async def answers(api: httpx.AsyncClient, path: str, status: int) -> None:
    """Waits until ``path`` answers ``status`` (the grant travelled through Kafka)."""
    async with asyncio.timeout(30):
        while (await api.get(path)).status_code != status:
            await asyncio.sleep(0.2)


async def test_grants_follow_the_iam_stream_newest_version_winning(
    services: LocalServices, servers: Settings
) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"

    async def send(event: dict[str, Any]) -> None:
        # One key for the whole test: one partition, so the events are consumed in this order.
        await publish(servers, Topic.IAM_POLICY_UPDATED.value, tenant, event)

    async with (
        client(services.api_url, "alice", tenant) as alice,
        client(services.api_url, "bob", tenant) as bob,
    ):
        first = await create(alice, recurring_body(uuid.uuid4().hex))
        second = await create(alice, recurring_body(uuid.uuid4().hex))
        path, marker = f"/exports/{first['id']}", f"/exports/{second['id']}"
        assert (await bob.get(path)).status_code == 403

        await send(grant_event(tenant, "g1", 1, first["id"]))
        await answers(bob, path, 200)
        assert (await bob.delete(path)).status_code == 403  # only the granted action

        await send(grant_event(tenant, "g1", 3, first["id"], revoked=True))
        await answers(bob, path, 403)
        # A late older version and a redelivered one change nothing; a grant of another
        # tenant and a malformed event neither. The marker grant, sent last, tells when all
        # of them were consumed.
        await send(grant_event(tenant, "g1", 2, first["id"]))
        await send(grant_event(tenant, "g1", 1, first["id"]))
        await send(grant_event("globex", "g9", 1, "*"))
        broken = grant_event(tenant, "g2", 1, "*", subjects=["bob"])
        await send(broken)
        await send(grant_event(tenant, "marker", 1, second["id"]))
        await answers(bob, marker, 200)
        assert (await bob.get(path)).status_code == 403

    [letter] = await read_topic(servers, Topic.IAM_POLICY_UPDATED.dead_letter, 1, f'{tenant}"')
    reason = dict(letter.headers)["x-dlq-reason"].decode()
    assert "data.subjects.0" in reason, reason

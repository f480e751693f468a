"""The request-api's IAM events: each goes out once, even when its process dies between its
commit and its publish, and however many creates share a commit."""

from __future__ import annotations

import asyncio

import pytest

from exporter.adapters.mongo.client import OUTBOX
from exporter.contracts.request import ExportRequestSpec
from exporter.domain.access import Principal
from exporter.runtime import Runtime
from exporter.settings import Settings
from exporter.topics import Topic
from request_api.commands import create_export
from tests.own_database import own_database
from tests.request_cases import SEED_000
from tests.topic_reader import json_field, topic_reader

pytestmark = pytest.mark.servers


async def published_ids(settings: Settings, *request_ids: str) -> list[str]:
    async with topic_reader(settings, Topic.IAM_POLICY_UPDATED) as consumer:
        ids: list[str] = []
        for _ in range(10):  # the embedded broker's end offsets are unreliable: read a few rounds
            batch = await consumer.getmany(timeout_ms=300)
            ids += [
                json_field(record.value, "id")
                for records in batch.values()
                for record in records
                if str(json_field(record.value, "data", "resource")).endswith(request_ids)
            ]
        return ids


async def test_event_survives_a_crash_after_commit(servers: Settings) -> None:
    # The dying process leased its event to itself; the lease must run out first.
    settings = own_database(servers, "crash", outbox={"lease_seconds": 1.0})
    dying = Runtime.build(settings)
    await dying.prepare()
    # The process commits, then dies before its relay runs: the relay was never started.
    answer = await create_export(
        dying, Principal("alice", "acme"), ExportRequestSpec.model_validate(SEED_000), None
    )
    request_id = answer.body["id"]
    await dying.close()
    assert await published_ids(settings, request_id) == []

    restarted = Runtime.build(settings)
    await restarted.start(relay=False)
    try:
        assert await restarted.outbox.pending_count() == 1
        await asyncio.sleep(1.0)  # the dead process's lease runs out
        assert await restarted.relay.publish_pending() == 1
        assert await restarted.relay.publish_pending() == 0
        assert await published_ids(settings, request_id) == [f"{request_id}:v1:create"]
    finally:
        await restarted.mongo.drop_database(settings.mongo.database)
        await restarted.stop()


async def test_creates_committed_together_share_one_outbox_entry_and_each_event_goes_out_once(
    runtime: Runtime,
) -> None:
    spec = ExportRequestSpec.model_validate(SEED_000)
    answers = await asyncio.gather(
        *(create_export(runtime, Principal(f"user{i}", "acme"), spec, None) for i in range(30))
    )
    request_ids = [answer.body["id"] for answer in answers]

    assert await runtime.outbox.pending_count() == 30
    assert await runtime.db[OUTBOX].count_documents({}) < 30  # the group commit merged entries
    assert await runtime.relay.publish_handed() == 30
    assert await runtime.outbox.pending_count() == 0
    published = await published_ids(runtime.settings, *request_ids)
    assert sorted(published) == sorted(f"{request_id}:v1:create" for request_id in request_ids)

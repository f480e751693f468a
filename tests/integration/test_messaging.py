"""The outbox relay and dead-lettering, against the real broker and store."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from pymongo.errors import DuplicateKeyError

from exporter.adapters.kafka import KafkaPublisher, make_broker, subscriber_options
from exporter.adapters.mongo.outbox import outbox_document, outbox_message
from exporter.contracts.base import utcnow
from exporter.contracts.events import IamPolicyUpdated, IamPolicyUpdatedData, MeasurementsPublished
from exporter.local.demo import demo_measurements, publish
from exporter.runtime import Runtime
from exporter.service_layer.outbox import OutboxRelay
from exporter.settings import Settings
from exporter.signing import own_producer
from exporter.topics import Topic
from tests.topic_reader import topic_reader


def iam_event(index: int, tenant: str) -> IamPolicyUpdated:
    return IamPolicyUpdated(
        id=f"{tenant}:r{index}:v1:create",
        source="test",
        tenant=tenant,
        actor="alice",
        data=IamPolicyUpdatedData(
            action="create",
            resource=f"urn:exporter:{tenant}:export:r{index}",
            owner="alice",
            tenant=tenant,
            actor="alice",
            version=1,
            time=utcnow(),
        ),
    )


async def read_topic(settings: Settings, topic: str, expected: int, match: str) -> list[Any]:
    """Records of ``topic`` whose value contains ``match``, until ``expected`` arrived (or 20 s)."""
    found: list[Any] = []
    async with topic_reader(settings, topic) as consumer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while loop.time() < deadline and len(found) < expected:
            batches = await consumer.getmany(timeout_ms=300)
            found += [r for rs in batches.values() for r in rs if match.encode() in (r.value or b"")]
        return found


class FailingPublisher(KafkaPublisher):
    """Dies after ``limit`` publishes, as a relay process killed mid-batch would."""

    def __init__(self, broker: KafkaBroker, settings: Settings, limit: int) -> None:
        super().__init__(broker, own_producer(settings.kafka))
        self.limit = limit

    async def publish_raw(self, topic: str, key: str, payload: dict[str, object]) -> None:
        if self.limit == 0:
            raise ConnectionError("publish step killed")
        self.limit -= 1
        await super().publish_raw(topic, key, payload)


async def test_outbox_publishes_each_event_once_even_after_a_failed_publish(runtime: Runtime) -> None:
    tenant = uuid.uuid4().hex[:8]
    for index in range(5):
        await runtime.outbox.add(
            outbox_document([outbox_message(Topic.IAM_POLICY_UPDATED, f"r{index}", iam_event(index, tenant))])
        )
    with pytest.raises(DuplicateKeyError):  # a replayed event is refused, never queued twice
        await runtime.outbox.add(
            outbox_document([outbox_message(Topic.IAM_POLICY_UPDATED, "r0", iam_event(0, tenant))])
        )

    failing = FailingPublisher(runtime.broker, runtime.settings, limit=2)
    broken = OutboxRelay(runtime.outbox, failing, runtime.settings.outbox)
    with pytest.raises(ConnectionError):
        await broken.publish_pending()
    assert await runtime.outbox.pending_count() == 3

    assert await runtime.relay.publish_pending() == 3
    assert await runtime.relay.publish_pending() == 0
    records = await read_topic(runtime.settings, Topic.IAM_POLICY_UPDATED.value, 5, tenant)
    ids = [json.loads(r.value)["id"] for r in records]
    assert sorted(ids) == sorted(f"{tenant}:r{i}:v1:create" for i in range(5))
    assert {r.key for r in records} == {f"r{i}".encode() for i in range(5)}


async def test_invalid_message_goes_to_the_dead_letter_topic_and_the_consumer_carries_on(
    servers: Settings,
) -> None:
    tenant = uuid.uuid4().hex[:8]
    received: list[MeasurementsPublished] = []
    arrived = asyncio.Event()
    broker = make_broker(servers)

    @broker.subscriber(Topic.MEASUREMENTS.value, **subscriber_options(f"dlq-test-{tenant}"))
    async def handle(event: MeasurementsPublished) -> None:
        if event.tenant == tenant:
            received.append(event)
            arrived.set()

    bad = demo_measurements(tenant).to_wire()
    bad["data"]["records"][0]["value"] = "warm"
    bad["id"] = f"{tenant}-bad"
    await publish(servers, Topic.MEASUREMENTS.value, "k", bad)
    await publish(servers, Topic.MEASUREMENTS.value, "k", demo_measurements(tenant).to_wire())
    async with broker:
        await broker.start()
        await asyncio.wait_for(arrived.wait(), timeout=30)
    assert [event.tenant for event in received] == [tenant]

    [dead] = await read_topic(servers, Topic.MEASUREMENTS.dead_letter, 1, f"{tenant}-bad")
    headers = {key: value.decode() for key, value in dead.headers}
    assert json.loads(dead.value)["id"] == f"{tenant}-bad"
    assert "data.records.0.value" in headers["x-dlq-reason"]
    assert headers["x-dlq-source-topic"] == Topic.MEASUREMENTS.value
    assert headers["x-dlq-source-offset"].isdigit()

"""Every event type we publish, read back from the real broker with the official CloudEvents SDK
(structured content mode), and taken as JSON by our own typed consumers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from cloudevents.core.bindings.kafka import KafkaMessage, from_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from exporter.adapters.kafka import KafkaPublisher, make_broker, subscriber_options
from exporter.adapters.mongo.outbox import outbox_message
from exporter.contracts.events import CLOUDEVENTS_CONTENT_TYPE, Envelope, ExportRequested
from exporter.contracts.job import JobResult
from exporter.runtime import Runtime
from exporter.service_layer.dispatch import completed_event
from exporter.service_layer.iam import request_event
from exporter.settings import Settings
from exporter.topics import Topic
from tests.integration.test_messaging import read_topic
from tests.notify_cases import job_spec


def published(tenant: str) -> dict[Topic, Envelope[Any]]:
    """One event of each type we publish, built by the code the services build them with."""
    spec = job_spec(tenant=tenant, job_id=f"{tenant}-job")
    done = JobResult(status="done", bucket="exports", row_count=3, size_in_bytes=10)
    return {
        Topic.EXPORT_REQUESTED: ExportRequested(
            id=spec.job_id, source="exporter/scheduler", subject=spec.job_id, tenant=tenant, data=spec
        ),
        Topic.EXPORT_COMPLETED: completed_event(spec, done, "exporter/renderer"),
        Topic.IAM_POLICY_UPDATED: request_event(f"{tenant}-r1", tenant, "alice", 1, "create", "alice"),
    }


async def relay(publisher: KafkaPublisher, topic: Topic, event: Envelope[Any]) -> None:
    """What the outbox relay does with the event's outbox entry."""
    message = outbox_message(topic, event.id, event)
    await publisher.publish_raw(message["topic"], message["key"], message["payload"])


async def test_each_event_we_publish_reads_back_with_the_official_cloudevents_sdk(runtime: Runtime) -> None:
    tenant = uuid.uuid4().hex[:8]
    events = published(tenant)
    for topic, event in events.items():
        await relay(runtime.publisher, topic, event)
    for topic, event in events.items():
        [record] = await read_topic(runtime.settings, topic.value, 1, event.id)
        headers = dict(record.headers)
        assert headers["content-type"] == CLOUDEVENTS_CONTENT_TYPE.encode()
        message = KafkaMessage(headers=headers, key=record.key, value=record.value)
        cloud_event = from_structured(message, JSONFormat(), CloudEvent)
        wire = event.to_wire()
        assert cloud_event.get_specversion() == "1.0"
        assert cloud_event.get_id() == event.id
        assert cloud_event.get_type() == event.type
        assert cloud_event.get_source() == event.source
        assert cloud_event.get_subject() == event.subject
        assert cloud_event.get_time() == event.time
        assert cloud_event.get_datacontenttype() == "application/json"
        assert cloud_event.get_extension("tenant") == tenant
        assert cloud_event.get_data() == wire["data"]


async def test_a_typed_consumer_decodes_a_structured_cloudevent_as_json(servers: Settings) -> None:
    """FastStream decodes ``application/json`` only: without the broker's ``+json`` decoder, a
    handler typed with a model got the bytes, and every event went to the dead-letter topic."""
    tenant = uuid.uuid4().hex[:8]
    event = published(tenant)[Topic.EXPORT_REQUESTED]
    decoded: asyncio.Queue[ExportRequested] = asyncio.Queue()
    broker = make_broker(servers)

    async def handle(requested: ExportRequested) -> None:
        await decoded.put(requested)

    broker.subscriber(Topic.EXPORT_REQUESTED.value, **subscriber_options(f"ce-test-{tenant}"))(handle)
    async with broker:
        await broker.start()
        await relay(KafkaPublisher.from_settings(broker, servers.kafka), Topic.EXPORT_REQUESTED, event)
        # The group reads the topic from its start: earlier tests' events come first.
        while (requested := await asyncio.wait_for(decoded.get(), timeout=30)).tenant != tenant:
            pass
    assert requested == event

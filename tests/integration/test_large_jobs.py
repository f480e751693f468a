"""Large jobs on the real servers: a job of 5,000 files is announced within Kafka's message limit
and notified with all its files, and an event the broker refuses never blocks the outbox relay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from exporter.adapters.mongo.jobs import new_job_document
from exporter.adapters.mongo.outbox import outbox_document
from exporter.contracts.base import utcnow
from exporter.contracts.events import EVENT_FILES, ExportCompleted
from exporter.contracts.job import JobFile, JobResult
from exporter.domain.job_life import DeliveryStatus, JobStatus
from exporter.domain.jobs import pending_deliveries
from exporter.runtime import Runtime
from exporter.topics import Topic
from renderer.export_job import finish
from tests.integration.notifier_support import (
    ChatReceiver,
    chat_receiver,
    deliveries,
    make_notifier,
    notifier_settings,
)
from tests.notify_cases import job_spec
from tests.topic_reader import all_values, json_field, topic_reader

pytestmark = pytest.mark.servers
chat = pytest.fixture(scope="module")(chat_receiver)
FILES = 5_000
KAFKA_MESSAGE_LIMIT = 1024 * 1024


def many_files(job_id: str) -> list[JobFile]:
    return [
        JobFile(
            key=f"tenant/req/{job_id}/weights-part-{n:04d}.csv",
            name=f"weights-part-{n:04d}.csv",
            size_in_bytes=1_000_000,
            rows=10_000,
            checksum=f"sha256:{n:064x}",
            content_type="text/csv",
        )
        for n in range(FILES)
    ]


async def test_a_job_of_5000_files_is_announced_and_notified(runtime: Runtime, chat: ChatReceiver) -> None:
    spec = job_spec([{"medium": "slack", "recipients": ["webhook:ops"]}], job_id=f"r1-{uuid.uuid4().hex}")
    await runtime.jobs.add(new_job_document(spec, pending_deliveries(spec.request)))
    started_at = await runtime.jobs.start(spec.job_id, timedelta(minutes=1))
    assert started_at is not None
    files = many_files(spec.job_id)
    result = JobResult(
        status=JobStatus.DONE,
        bucket=runtime.storage.bucket,
        files=files,
        row_count=sum(file.rows for file in files),
        size_in_bytes=sum(file.size_in_bytes for file in files),
        started_at=started_at,
        completed_at=utcnow(),
    )

    await finish(runtime, spec, result, started_at)
    assert await runtime.relay.publish_handed() == 1
    assert await runtime.outbox.pending_count() == 0

    [value] = [
        value
        for value in await all_values(runtime.settings, Topic.EXPORT_COMPLETED.value)
        if json_field(value, "data", "jobId") == spec.job_id
    ]
    assert value is not None
    assert len(value) < KAFKA_MESSAGE_LIMIT // 10
    event = ExportCompleted.model_validate_json(value)
    assert (event.data.file_count, event.data.files_truncated) == (FILES, True)
    assert event.data.files == files[:EVENT_FILES]

    before = len(chat.calls("/webhooks/slack-ops"))
    notifier = make_notifier(runtime, notifier_settings(runtime.settings, chat))
    await notifier.on_export_completed([event])
    [entry] = await deliveries(runtime, spec.job_id)
    assert entry.status is DeliveryStatus.SENT
    [hook] = chat.calls("/webhooks/slack-ops")[before:]
    assert files[-1].name in hook.json["text"]  # read from the job: the event lists the first ones


async def dead_letter(runtime: Runtime, event_id: str) -> dict[str, str]:
    """The headers of the letter parked for ``event_id`` on ``export.completed.dlq``."""
    async with topic_reader(runtime.settings, Topic.EXPORT_COMPLETED.dead_letter) as consumer:
        async with asyncio.timeout(30):  # a bound for a hang, not a measurement
            while True:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        headers = {key: value.decode() for key, value in record.headers}
                        if headers.get("x-dlq-event-id") == event_id:
                            return headers


async def test_an_event_the_broker_refuses_never_blocks_the_relay(runtime: Runtime) -> None:
    key = f"job-{uuid.uuid4().hex}"
    messages: list[dict[str, Any]] = [
        {
            "id": f"{key}:{name}",
            "topic": Topic.EXPORT_COMPLETED.value,
            "key": key,
            "payload": {"id": f"{key}:{name}", "data": {"jobId": key, "padding": "x" * size}},
        }
        for name, size in (("huge", 2 * KAFKA_MESSAGE_LIMIT), ("next", 10))
    ]
    await runtime.outbox.add(outbox_document(messages))

    assert await runtime.relay.publish_pending() == 2
    assert await runtime.outbox.pending_count() == 0

    announced = [
        json_field(value, "id")
        for value in await all_values(runtime.settings, Topic.EXPORT_COMPLETED.value)
        if json_field(value, "data", "jobId") == key
    ]
    assert announced == [f"{key}:next"]
    letter = await dead_letter(runtime, f"{key}:huge")
    assert letter["x-dlq-reason"].endswith("bytes, more than the broker takes")

"""The consumer fuzzer: hostile records on every consumed topic, against the running services.

It checks what the issue asks of every consumer: each record it must refuse is in the topic's
dead-letter topic with a reason; no service process died; and none stalled, shown by a valid
record sent after the fuzz on each topic doing its work (a measurement, thing, entity and grant
stored; a job rendered, which the notifier then notifies).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from exporter.adapters.kafka import client_options
from exporter.adapters.mongo.client import GRANTS, MEASUREMENTS, connect, database
from exporter.adapters.mongo.entities import EntityRepository
from exporter.adapters.mongo.jobs import JobRepository
from exporter.adapters.mongo.things import ThingRepository
from exporter.domain.job_life import DeliveryStatus
from exporter.local.services import LocalServices
from exporter.settings import Settings
from exporter.topics import Topic
from tests.fuzz.records import FuzzRecord, base_event, fuzz_records, refusal
from tests.signing import signer

Source = tuple[str, int, int]  # topic, partition, offset


@dataclass
class ConsumerFuzzReport:
    sent: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)  # refused records not dead-lettered
    unexplained: list[str] = field(default_factory=list)  # letters without a reason
    stalled: list[str] = field(default_factory=list)  # topics whose sentinel was not handled
    crashed: list[str] = field(default_factory=list)  # service processes that exited

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexplained or self.stalled or self.crashed)

    def summary(self) -> str:
        return (
            f"consumers: {sum(self.sent.values())} records on {len(self.sent)} topics, "
            f"{sum(self.refused.values())} to refuse, {sum(self.dead_lettered.values())} dead-lettered, "
            f"{len(self.missing)} missing from a dead-letter topic, {len(self.stalled)} stalled, "
            f"{len(self.crashed)} crashed"
        )


async def _publish(settings: Settings, records: list[FuzzRecord]) -> list[Source]:
    producer = AIOKafkaProducer(**client_options(settings.kafka), max_request_size=2_000_000)
    await producer.start()
    try:
        sent = []
        for record in records:
            metadata = await producer.send_and_wait(
                record.topic.value, record.value, key=record.key, headers=record.headers
            )
            sent.append((record.topic.value, metadata.partition, metadata.offset))
        return sent
    finally:
        await producer.stop()


async def _dead_letters(settings: Settings, wanted: set[Source], seconds: float) -> dict[Source, str]:
    """The dead letters of ``wanted`` records (their reasons), read until all came or time ran out."""
    topics = sorted({Topic(topic).dead_letter for topic, _, _ in wanted})
    consumer = AIOKafkaConsumer(
        *topics,
        **client_options(settings.kafka),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        fetch_max_bytes=4_000_000,
        max_partition_fetch_bytes=2_000_000,
    )
    await consumer.start()
    found: dict[Source, str] = {}
    try:
        async with asyncio.timeout(seconds):
            while not wanted <= found.keys():
                batches = await consumer.getmany(timeout_ms=500)
                for letters in batches.values():
                    for letter in letters:
                        headers = {k: v.decode(errors="replace") for k, v in letter.headers}
                        source = (
                            headers.get("x-dlq-source-topic", ""),
                            int(headers.get("x-dlq-source-partition", -1)),
                            int(headers.get("x-dlq-source-offset", -1)),
                        )
                        if source in wanted:
                            found[source] = headers.get("x-dlq-reason", "")
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return found


async def _sentinels_handled(settings: Settings, tenant: str, seed: int, seconds: float) -> list[str]:
    """Sends one valid record per topic; returns the topics whose consumer did not act on it."""
    own = signer(settings)
    events = {topic: base_event(topic, tenant, seed) for topic in Topic}
    job_id = events[Topic.EXPORT_REQUESTED]["data"]["jobId"]
    # The completed event of the sentinel job comes from the renderer itself, not from here.
    await _publish(
        settings,
        [
            FuzzRecord(topic, value, topic.value.encode(), own.raw_headers(topic.value, value))
            for topic, value in ((topic, _json(event)) for topic, event in events.items())
            if topic is not Topic.EXPORT_COMPLETED
        ],
    )
    data = {topic: event["data"] for topic, event in events.items()}
    client = connect(settings)
    db = database(client, settings)
    jobs = JobRepository(db)

    async def handled(topic: Topic) -> bool:
        if topic is Topic.MEASUREMENTS:
            query = {"tenant": tenant, "publisher": data[topic]["publisher"]}
            return await db[MEASUREMENTS].count_documents(query) > 0
        if topic is Topic.THINGS:
            return await ThingRepository(db).get(tenant, data[topic]["id"]) is not None
        if topic is Topic.ENTITIES:
            entity = data[topic]
            return await EntityRepository(db).get(tenant, entity["entityType"], entity["id"]) is not None
        if topic is Topic.IAM_POLICY_UPDATED:
            return await db[GRANTS].find_one({"_id": data[topic]["grantId"]}) is not None
        job = await jobs.get(job_id)
        if topic is Topic.EXPORT_REQUESTED:
            return job is not None and job.status.is_final
        # export.completed: the notifier recorded the outcome of the sentinel job's notification.
        return job is not None and all(d.status is not DeliveryStatus.PENDING for d in job.notifications)

    pending = set(Topic)
    try:
        async with asyncio.timeout(seconds):
            while pending:
                pending -= {topic for topic in list(pending) if await handled(topic)}
                await asyncio.sleep(0.5)
    except TimeoutError:
        pass
    finally:
        await client.close()
    return sorted(str(topic) for topic in pending)


def _json(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


async def fuzz_consumers(
    services: LocalServices, seed: int, per_topic: int, seconds: float = 120.0
) -> ConsumerFuzzReport:
    """Fuzzes every consumed topic with ``per_topic`` records drawn from ``seed``."""
    settings = services.settings
    rng = random.Random(seed)
    tenant = f"fuzz{seed}"
    own = signer(settings)
    records = [record for topic in Topic for record in fuzz_records(topic, per_topic, rng, tenant, own)]
    sources = await _publish(settings, records)
    report = ConsumerFuzzReport()
    must_refuse: dict[Source, FuzzRecord] = {}
    for record, source in zip(records, sources, strict=True):
        report.sent[record.topic.value] += 1
        if refusal(record, settings) is not None:
            must_refuse[source] = record
            report.refused[record.topic.value] += 1
    letters = await _dead_letters(settings, set(must_refuse), seconds)
    for source, reason in letters.items():
        report.dead_lettered[source[0]] += 1
        if not reason.strip():
            report.unexplained.append(f"{source}: {must_refuse[source].how}")
    report.missing = [
        f"{topic}[{partition}]@{offset}: {must_refuse[(topic, partition, offset)].how}"
        for topic, partition, offset in sorted(must_refuse.keys() - letters.keys())
    ]
    report.stalled = await _sentinels_handled(settings, tenant, seed, seconds)
    report.crashed = services.exited()
    return report

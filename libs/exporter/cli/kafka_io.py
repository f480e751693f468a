"""The operator commands' Kafka side: read a topic to its current end, fetch one record by
partition and offset, publish signed as the services sign (``exporter.signing``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from exporter.adapters.kafka import client_options
from exporter.settings import Settings
from exporter.signing import KEY_ID_HEADER, SIGNATURE_HEADER, own_producer
from exporter.topics import Topic

QUIET_SECONDS = 2.0
FETCH_SECONDS = 10.0


def registered(name: str) -> Topic:
    """A topic of the registry, named as it is or as its dead-letter topic."""
    try:
        return Topic(name.removesuffix(".dlq"))
    except ValueError:
        known = ", ".join(topic.value for topic in Topic)
        raise ValueError(f"unknown topic {name!r}; known: {known} (and each with .dlq)") from None


@asynccontextmanager
async def consumer(
    settings: Settings, topic: str, *, from_beginning: bool
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer outside any group that commits nothing: reading never moves a service's offsets."""
    reader = AIOKafkaConsumer(
        **client_options(settings.kafka),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await reader.start()
    try:
        if topic not in await reader.topics():  # a metadata request for every topic, ours among them
            raise ValueError(f"topic {topic!r} does not exist on the broker")
        partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        reader.assign(partitions)
        if from_beginning:
            await reader.seek_to_beginning(*partitions)
        else:
            await reader.seek_to_end(*partitions)
        yield reader
    finally:
        await reader.stop()


async def read_to_end(settings: Settings, topic: str, limit: int) -> list[Any]:
    """The topic's records from the start, up to the end offsets seen at start, or until it has
    been quiet for a while (the embedded broker's end offsets have been seen to be wrong)."""
    records: list[Any] = []
    async with consumer(settings, topic, from_beginning=True) as reader:
        partitions = list(reader.assignment())
        ends = await reader.end_offsets(partitions)
        loop = asyncio.get_running_loop()
        last = loop.time()
        while len(records) < limit and loop.time() - last < QUIET_SECONDS:
            if all([await reader.position(tp) >= ends[tp] for tp in partitions]):
                break
            batch = await reader.getmany(timeout_ms=300, max_records=limit - len(records))
            for found in batch.values():
                records.extend(found)
                last = loop.time()
    return sorted(records, key=lambda record: (record.partition, record.offset))


async def fetch(settings: Settings, topic: str, partition: int, offset: int) -> Any:
    """The record at ``partition``:``offset``; ValueError when there is none."""
    async with consumer(settings, topic, from_beginning=True) as reader:
        tp = TopicPartition(topic, partition)
        if tp not in reader.assignment():
            raise ValueError(f"{topic} has no partition {partition}")
        reader.seek(tp, offset)
        try:
            async with asyncio.timeout(FETCH_SECONDS):
                while True:
                    batch = await reader.getmany(tp, timeout_ms=500, max_records=1)
                    for record in batch.get(tp, []):
                        if record.offset == offset:
                            return record
                        raise ValueError(f"{topic} has no record at {partition}:{offset}")
        except TimeoutError:
            raise ValueError(f"{topic} has no record at {partition}:{offset}") from None


async def publish(
    settings: Settings, topic: str, value: bytes, key: bytes | None, headers: Sequence[tuple[str, bytes]] = ()
) -> Any:
    """One record signed with the services' own key (any earlier signature dropped); its metadata."""
    kept = [(name, raw) for name, raw in headers if name not in {KEY_ID_HEADER, SIGNATURE_HEADER}]
    signed = kept + own_producer(settings.kafka).raw_headers(topic, value)
    producer = AIOKafkaProducer(**client_options(settings.kafka))
    await producer.start()
    try:
        return await producer.send_and_wait(topic, value, key=key, headers=signed)
    finally:
        await producer.stop()


def header_text(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """Headers as text, for showing (a repeated header keeps its last value)."""
    return {name: (raw or b"").decode(errors="replace") for name, raw in headers or ()}

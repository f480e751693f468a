"""Kafka clients other than ours against the embedded broker: what an operator or integrator uses.

Each client (aiokafka, kafka-python, confluent-kafka's librdkafka, KafkaJS) writes one record to a
fresh topic; then each reads all four in a consumer group of its own and commits, and the broker
must report that group's committed offset. librdkafka before 2.2.0 cannot read the broker's
ApiVersions answer at all (README, "Kafka clients and the embedded broker"); 2.16 is pinned here.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from asyncio.subprocess import PIPE
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import confluent_kafka
import kafka
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from exporter.settings import Settings

CLIENTS = ("aiokafka", "kafka-python", "confluent-kafka", "kafkajs")
KAFKAJS = Path(__file__).parent / "kafkajs"
# Bounds, not assertions: a client that cannot finish within them fails its test.
READ_SECONDS = 30.0
SESSION_TIMEOUT_MS = 6000  # the broker holds a first JoinGroup for about half of it
HEARTBEAT_MS = 1000
# aiokafka and kafka-python share these names: read from the start, commit by hand.
PYTHON_GROUP_OPTIONS: dict[str, Any] = {
    "auto_offset_reset": "earliest",
    "enable_auto_commit": False,
    "session_timeout_ms": SESSION_TIMEOUT_MS,
    "heartbeat_interval_ms": HEARTBEAT_MS,
}

P = ParamSpec("P")
T = TypeVar("T")
Writer = Callable[[str, str, bytes], Awaitable[None]]
Reader = Callable[[str, str, str, int], Awaitable[list[bytes]]]


async def write_aiokafka(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"aiokafka")
    finally:
        await producer.stop()


async def read_aiokafka(bootstrap: str, topic: str, group: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, **PYTHON_GROUP_OPTIONS)
    await consumer.start()
    values: list[bytes] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READ_SECONDS
        while len(values) < count and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            values += [record.value for records in batches.values() for record in records]
        await consumer.commit()
    finally:
        await consumer.stop()
    return values


def _write_kafka_python(bootstrap: str, topic: str, value: bytes) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(topic, value, key=b"kafka-python").get(timeout=READ_SECONDS)
    finally:
        producer.close()


def _read_kafka_python(bootstrap: str, topic: str, group: str, count: int) -> list[bytes]:
    consumer = kafka.KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        consumer_timeout_ms=int(READ_SECONDS * 1000),
        **PYTHON_GROUP_OPTIONS,
    )
    values: list[bytes] = []
    try:
        for record in consumer:
            values.append(record.value)
            if len(values) == count:
                break
        consumer.commit()
    finally:
        consumer.close()
    return values


def _write_confluent(bootstrap: str, topic: str, value: bytes) -> None:
    errors: list[object] = []
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, value, key=b"confluent-kafka", on_delivery=lambda error, _: errors.append(error))
    assert producer.flush(READ_SECONDS) == 0, "confluent-kafka: record not delivered"
    assert errors == [None]


def _read_confluent(bootstrap: str, topic: str, group: str, count: int) -> list[bytes]:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
        }
    )
    values: list[bytes] = []
    try:
        consumer.subscribe([topic])
        for _ in range(int(READ_SECONDS * 2)):
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is None, message.error()
                values.append(message.value() or b"")
            if len(values) == count:
                break
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return values


async def _node(*arguments: str) -> str:
    """Runs the KafkaJS client (installed by `make install`), returns its output."""
    assert (KAFKAJS / "node_modules" / "kafkajs").is_dir(), "KafkaJS is missing: run `make install`"
    process = await asyncio.create_subprocess_exec(
        "node", str(KAFKAJS / "client.js"), *arguments, stdout=PIPE, stderr=PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), READ_SECONDS * 2)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def write_kafkajs(bootstrap: str, topic: str, value: bytes) -> None:
    await _node("produce", bootstrap, topic, value.decode())


async def read_kafkajs(bootstrap: str, topic: str, group: str, count: int) -> list[bytes]:
    output = await _node("consume", bootstrap, topic, group, str(count))
    return [value.encode() for value in json.loads(output)]


def _in_thread(function: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """A blocking client's call off the event loop, so the session's other async fixtures stay live."""

    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(function, *args, **kwargs)

    return call


WRITERS: dict[str, Writer] = {
    "aiokafka": write_aiokafka,
    "kafka-python": _in_thread(_write_kafka_python),
    "confluent-kafka": _in_thread(_write_confluent),
    "kafkajs": write_kafkajs,
}
READERS: dict[str, Reader] = {
    "aiokafka": read_aiokafka,
    "kafka-python": _in_thread(_read_kafka_python),
    "confluent-kafka": _in_thread(_read_confluent),
    "kafkajs": read_kafkajs,
}


@pytest.fixture(scope="module")
async def topic(servers: Settings) -> str:
    """A fresh one-partition topic holding one record written by each client."""
    name = f"kafka-clients-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    for client in CLIENTS:
        await WRITERS[client](servers.kafka.bootstrap_servers, name, f"from-{client}".encode())
    return name


async def committed(bootstrap: str, group: str, partition: TopicPartition) -> int:
    """The group's committed offset as the broker reports it to a third client.

    The partition is named: asked for all of a group's partitions (OffsetFetch with null topics),
    the broker answers what aiokafka cannot parse.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[partition])
    finally:
        await admin.close()
    return int(offsets[partition].offset)


@pytest.mark.parametrize("client", CLIENTS)
async def test_client_reads_every_clients_record_and_commits_in_a_group(
    servers: Settings, topic: str, client: str
) -> None:
    bootstrap = servers.kafka.bootstrap_servers
    group = f"{topic}-{client}"

    values = await READERS[client](bootstrap, topic, group, len(CLIENTS))

    assert sorted(values) == sorted(f"from-{writer}".encode() for writer in CLIENTS)
    assert await committed(bootstrap, group, TopicPartition(topic, 0)) == len(CLIENTS)

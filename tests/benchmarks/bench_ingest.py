"""Ingest throughput: records per second from the topic to the store, against the store's own rate.

On fresh local servers (started in a temporary folder, stopped at the end), for SenML packs of
1,000 series (100 devices × 10 metrics), side by side in one run:

- (a) ingest: the ingestor's real measurements consumer (batches, flushes, segments, commit),
  from partition assignment until every reading is stored;
- (b) the store's own rate for the SAME segment documents: ``insert_many`` of exactly what the
  ingestor wrote, one call per flush as the ingestor made them, into a fresh database;
- (c) the old layout, one document per reading (kept here only as the reference, built here),
  on fewer readings (``--old-records``): it is two orders of magnitude slower;
- (d) the ingestor's CPU path alone: decode and validate the packs into columns, build the
  segments and their documents, no I/O.

Rounds alternate (a) and (b) and keep each one's best: the machine is shared and noisy. The last
line sets (a) beside the target of 100,000 records/s and (a)/(b) beside the target of 0.7.

    PYTHONPATH=libs:services:. .venv/bin/python -m tests.benchmarks.bench_ingest --records 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from exporter.adapters.kafka import client_options, ensure_topics, make_broker
from exporter.adapters.mongo.client import MEASUREMENTS, Document, connect, ensure_indexes
from exporter.adapters.mongo.ingested import segments_from
from exporter.adapters.mongo.measurements import Added, MeasurementRepository
from exporter.adapters.mongo.segments import Segment, to_document
from exporter.contracts.ingest import Measurement
from exporter.local.servers import LocalServers
from exporter.settings import Settings
from exporter.signing import TENANT_HEADER
from exporter.topics import Topic
from ingestor.app import measurement_flusher, subscribe_measurements
from ingestor.decoding import Limits, decode_measurements
from ingestor.readings import Readings
from tests.topic_reader import topic_reader

TARGET_RATE = 100_000
TARGET_RATIO = 0.7
TENANT = "bench"
DEVICES = 100
METRICS = 10
HEADERS = [(TENANT_HEADER, TENANT.encode())]


def packs(records: int, pack_size: int) -> list[bytes]:
    """``records`` readings in SenML packs of ``pack_size``: each pack one device's ``METRICS``
    metrics over ``pack_size / METRICS`` seconds, the devices in turn."""
    start = int(datetime.now(UTC).timestamp()) - 30 * 86_400
    seconds = pack_size // METRICS
    messages = []
    for index in range(records // pack_size):
        pack = {
            "channel": "plant-1",
            "subtopic": "events.data",
            "publisher": f"device-{index % DEVICES:03d}",
            "protocol": "mqtt",
            "baseName": "sensor.",
            "baseTime": start + index // DEVICES * seconds,
            "baseUnit": "Cel",
            "records": [
                {"name": f"m{metric}", "time": second, "value": 20 + (index + second + metric) % 100 / 10}
                for second in range(seconds)
                for metric in range(METRICS)
            ],
        }
        messages.append(json.dumps(pack, separators=(",", ":")).encode())
    return messages


@dataclass(frozen=True)
class Consumed:
    """A record as the consumer hands it over, for the CPU path alone."""

    value: bytes
    offset: int
    partition: int = 0
    topic: str = Topic.MEASUREMENTS.value
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = tuple(HEADERS)


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    began = time.perf_counter()
    await work()
    return time.perf_counter() - began


def cpu_path(settings: Settings, messages: list[bytes]) -> tuple[float, float]:
    """Records/s of the ingestor's own work: (decode into columns, that plus segments and documents)."""
    limits = Limits.from_settings(settings.ingestor)
    now = datetime.now(UTC)
    began = time.perf_counter()
    readings = Readings()
    for offset, message in enumerate(messages):
        readings.add(Consumed(message, offset), limits, now)
    decoded = time.perf_counter()
    for segment in segments_from(readings.frame(), 0):
        to_document(segment)
    built = time.perf_counter()
    return readings.count / (decoded - began), readings.count / (built - began)


class Recording(MeasurementRepository):
    """The real repository, noting what it inserted (per flush) and when it has ``expected``."""

    def __init__(self, db: Any, expected: int) -> None:
        super().__init__(db)
        self.expected = expected
        self.stored = 0
        self.flushes: list[list[Segment]] = []
        self.done = asyncio.Event()

    async def add(self, segments: Sequence[Segment]) -> Added:
        added = await super().add(segments)
        self.flushes.append(list(segments))
        self.stored += added.readings
        if self.stored >= self.expected:
            self.done.set()
        return added


async def ingest(settings: Settings, records: int, database: str) -> tuple[float, list[list[Segment]]]:
    """Seconds the ingestor takes from partition assignment until ``records`` are stored, and the
    segments it wrote per flush. Each run is a new consumer group, reading the topic from the start."""
    client = connect(settings)
    db = client[database]
    await ensure_indexes(db)
    repository = Recording(db, records)
    broker = make_broker(settings)
    group = settings.ingestor.model_copy(update={"group_id": f"bench-{database}"})
    flusher = measurement_flusher(broker, repository, group)
    subscribe_measurements(broker, flusher, group)
    try:
        async with broker:
            await broker.start()
            [subscriber] = broker.subscribers
            while not subscriber.consumer or not subscriber.consumer.assignment():  # type: ignore[attr-defined]
                await asyncio.sleep(0.005)

            async def drained() -> None:
                """The last flush stored once the topic is drained, not ``flush_seconds`` later."""
                while flusher.taken < records:
                    await asyncio.sleep(0.002)
                await flusher.flush()
                await repository.done.wait()

            seconds = await timed(drained)
            await flusher.close()
            return seconds, repository.flushes
    finally:
        await client.close()


async def insert_rate(settings: Settings, batches: list[list[Document]], database: str) -> float:
    """Documents' readings/s when ``batches`` are inserted as they are, one ``insert_many`` each."""
    client = connect(settings)
    db = client[database]
    await ensure_indexes(db)
    collection = db[MEASUREMENTS]
    try:

        async def insert() -> None:
            for batch in batches:
                await collection.insert_many(batch, ordered=False)

        readings: int = sum(document.get("count", 1) for batch in batches for document in batch)
        return readings / await timed(insert)
    finally:
        await client.close()


def old_documents(settings: Settings, messages: list[bytes], batch: int) -> list[list[Document]]:
    """The old layout, one document per reading (the reference), in insert batches of ``batch``."""
    limits, now = Limits.from_settings(settings.ingestor), datetime.now(UTC)
    created = datetime.now(UTC)
    documents = [
        old_document(m, created)
        for message in messages
        for m in decode_measurements(message, HEADERS, limits, now)
    ]
    return [documents[start : start + batch] for start in range(0, len(documents), batch)]


def old_document(m: Measurement, created: datetime) -> Document:
    identity = f"{m.tenant}|{m.channel}|{m.subtopic}|{m.publisher}|{m.name}|{m.time_ms}"
    return {
        "_id": hashlib.blake2b(identity.encode(), digest_size=16).hexdigest(),
        **m._asdict(),
        "time": datetime.fromtimestamp(m.time_ms / 1000, UTC),
        "created": created,
    }


async def produce(settings: Settings, messages: list[bytes]) -> float:
    producer = AIOKafkaProducer(**client_options(settings.kafka), linger_ms=5)
    await producer.start()
    try:

        async def send_all() -> None:
            sent = [
                await producer.send(
                    Topic.MEASUREMENTS.value, message, key=str(i % DEVICES).encode(), headers=HEADERS
                )
                for i, message in enumerate(messages)
            ]
            await asyncio.gather(*sent)

        return await timed(send_all)
    finally:
        await producer.stop()


async def consume(settings: Settings, expected: int) -> float:
    """Seconds to read ``expected`` messages of the ingest topic, storing nothing."""
    async with topic_reader(settings, Topic.MEASUREMENTS) as consumer:

        async def read_all() -> None:
            seen = 0
            while seen < expected:
                batches = await consumer.getmany(
                    timeout_ms=200, max_records=settings.ingestor.batch_max_messages
                )
                seen += sum(len(records) for records in batches.values())

        return await timed(read_all)


async def bench(settings: Settings, records: int, pack_size: int, rounds: int, old_records: int) -> None:
    await ensure_topics(settings)
    messages = packs(records, pack_size)
    records = len(messages) * pack_size
    size = sum(len(message) for message in messages)
    print(f"{records:,} records of {DEVICES * METRICS:,} series in {len(messages):,} packs of {pack_size}")
    print(f"  ({size / 1e6:.1f} MB of JSON; flushes of {settings.ingestor.flush_readings:,} readings or")
    print(
        f"  {settings.ingestor.flush_seconds} s, batches of {settings.ingestor.batch_max_messages} messages)"
    )
    produced = await produce(settings, messages)
    consumed = await consume(settings, len(messages))
    print(
        f"kafka: produce {records / produced:,.0f} records/s,"
        f" consume alone {records / consumed:,.0f} records/s"
    )
    decode, build = cpu_path(settings, messages)
    print(
        f"(d) ingestor CPU alone: decode+validate {decode:,.0f} records/s;"
        f" with segments and documents {build:,.0f} records/s"
    )
    rates: list[float] = []
    ceilings: list[float] = []
    written: list[list[Segment]] = []
    for round_ in range(rounds):
        seconds, written = await ingest(settings, records, f"bench_ingest_{round_}")
        rates.append(records / seconds)
        batches = [[to_document(segment) for segment in flush] for flush in written]
        ceilings.append(await insert_rate(settings, batches, f"bench_store_{round_}"))
        print(
            f"round {round_ + 1}: (a) ingest {rates[-1]:10,.0f} records/s"
            f"   (b) store {ceilings[-1]:10,.0f} readings/s"
        )
    counts = [segment.count for flush in written for segment in flush]
    print(
        f"segments: {len(counts):,} in {len(written)} flushes, {sum(counts) / len(counts):,.0f} readings a"
        f" document on average (min {min(counts)}, max {max(counts)})"
    )
    old_messages = messages[: max(1, old_records // pack_size)]
    old = await insert_rate(settings, old_documents(settings, old_messages, 5_000), "bench_old_layout")
    print(
        f"(c) old layout, one document per reading ({len(old_messages) * pack_size:,} readings):"
        f" {old:,.0f} readings/s"
    )
    rate, ceiling = max(rates), max(ceilings)
    fast = "met" if rate >= TARGET_RATE else "NOT met"
    close = "met" if rate >= TARGET_RATIO * ceiling else "NOT met"
    print(
        f"ingest {rate:,.0f} records/s (target ≥ {TARGET_RATE:,}: {fast}); ingest/store {rate / ceiling:.2f}"
        f" (store {ceiling:,.0f}/s; target ≥ {TARGET_RATIO}: {close}); old layout {old:,.0f} records/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--pack-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--old-records", type=int, default=20_000)
    arguments = parser.parse_args()
    logging.disable(logging.WARNING)  # FastStream logs every batch
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        settings = LocalServers.test_settings(Path(folder))
        servers = LocalServers(settings)
        servers.start()
        try:
            asyncio.run(
                bench(
                    settings, arguments.records, arguments.pack_size, arguments.rounds, arguments.old_records
                )
            )
        finally:
            servers.stop()


if __name__ == "__main__":
    main()

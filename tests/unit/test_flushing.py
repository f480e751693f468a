"""The flush rules without servers: flushes by size or age, commits in order after the store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from exporter.adapters.mongo.measurements import Added
from exporter.adapters.mongo.segments import Segment
from exporter.settings.ingestor import IngestorSettings
from exporter.topics import Topic
from ingestor.batches import SourceRecord
from ingestor.flushing import Flusher

PARTITION = TopicPartition(Topic.MEASUREMENTS.value, 0)


@dataclass
class Record:
    offset: int
    topic: str = Topic.MEASUREMENTS.value
    partition: int = 0
    key: bytes | None = b"k"
    headers: list[tuple[str, bytes]] = field(default_factory=lambda: [("x-tenant", b"acme")])

    @property
    def value(self) -> bytes:
        """A pack of ten readings, ten seconds after the one before."""
        records = [{"time": 1_767_225_600 + self.offset * 10 + s, "value": s} for s in range(10)]
        return json.dumps({"channel": "c", "publisher": "p", "baseName": "t", "records": records}).encode()


class Store:
    """Takes flushes; holds the first one back until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.flushes: list[int] = []

    async def add(self, segments: Sequence[Segment]) -> Added:
        readings = sum(segment.count for segment in segments)
        if not self.flushes:
            self.flushes.append(readings)
            await self.release.wait()
        else:
            self.flushes.append(readings)
        return Added(readings=readings, segments=len(segments))


class Consumer:
    def __init__(self) -> None:
        self.committed: list[int] = []

    def assignment(self) -> set[TopicPartition]:
        return {PARTITION}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.append(offsets[PARTITION])


async def no_letters(record: SourceRecord, reason: str) -> None:
    raise AssertionError(reason)


async def turns(count: int = 20) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_a_flush_is_committed_only_after_the_one_before_it() -> None:
    store, consumer = Store(), Consumer()
    flusher = Flusher(store, no_letters, IngestorSettings(flush_readings=20, flush_seconds=60))
    await flusher.take([Record(0)], consumer)  # half a flush: kept
    await turns()
    assert store.flushes == []
    await flusher.take([Record(1), Record(2)], consumer)  # full: stored, held back
    await flusher.take([Record(3), Record(4)], consumer)  # full: stored while the first is held
    await turns()
    assert store.flushes == [30, 20]
    assert consumer.committed == []  # the second is stored, but the first is not
    third = asyncio.create_task(flusher.take([Record(5), Record(6)], consumer))
    await turns()
    assert not third.done()  # two flushes in flight: the consumer waits
    store.release.set()
    await third
    await flusher.flush()
    assert consumer.committed == [3, 5, 7]
    assert store.flushes == [30, 20, 20]
    await flusher.close()


async def test_a_flush_that_is_not_full_is_stored_once_it_waited_long_enough() -> None:
    store, consumer = Store(), Consumer()
    store.release.set()
    flusher = Flusher(store, no_letters, IngestorSettings(flush_readings=1_000, flush_seconds=0.01))
    await flusher.take([Record(0)], consumer)
    while not consumer.committed:
        await asyncio.sleep(0.01)
    assert (store.flushes, consumer.committed) == ([10], [1])
    await flusher.close()

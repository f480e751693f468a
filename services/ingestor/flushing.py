"""Measurements stored a flush at a time: many Kafka batches, one insert of segments, then the commit.

A Kafka batch is whatever the consumer had fetched, often a few hundred readings: one insert
each would give small segments. So batches are decoded into one flush until it holds
``flush_readings`` readings or its first one waited ``flush_seconds``; then the flush is
stored while the next one fills (two at most in the store), its dead letters are published, and
only then, after the flush before it, its offsets are committed, explicitly, up to its last
record. Until then nothing of it is committed: if the
process dies, Kafka delivers it again, and a replay adds nothing (``MeasurementRepository.add``).

While the store fails, the flush is retried from memory and the next one waits for it, so the
consumer stops taking more (a failure the store will repeat for ever, a bug say, dead-letters
the flush's records instead of holding the partition up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from exporter.adapters.errors import is_transient
from exporter.adapters.mongo.ingested import segments_from
from exporter.adapters.mongo.measurements import Added
from exporter.adapters.mongo.segments import POSITION_BITS, Segment
from exporter.settings.ingestor import IngestorSettings
from ingestor.batches import DeadLetter, SourceRecord
from ingestor.decoding import Limits, Rejected
from ingestor.readings import Readings

log = logging.getLogger(__name__)
# Flushes being stored at once: one in the store while the next one's segments are built.
FLUSHES_IN_FLIGHT = 2
# Records decoded between two looks at the event loop (the store's answers, the next fetch).
RECORDS_PER_TURN = 100


class Store(Protocol):
    """Where flushes go (``MeasurementRepository``)."""

    async def add(self, segments: Sequence[Segment]) -> Added: ...


class Committer(Protocol):
    """What a flush needs of the Kafka consumer (aiokafka's ``AIOKafkaConsumer``)."""

    def assignment(self) -> set[TopicPartition]: ...
    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...


@dataclass
class Flush:
    """Records taken since the last flush: their readings, refusals and where they end."""

    readings: Readings = field(default_factory=Readings)
    records: list[SourceRecord] = field(default_factory=list)
    refused: list[tuple[SourceRecord, str]] = field(default_factory=list)
    ends: dict[TopicPartition, int] = field(default_factory=dict)  # next offset to commit
    began: float = field(default_factory=time.monotonic)

    def __len__(self) -> int:
        return len(self.records)


class Flusher:
    """The measurements topic's consumer side: takes batches, stores flushes, commits after."""

    def __init__(self, repository: Store, dead_letter: DeadLetter, settings: IngestorSettings) -> None:
        self._repository = repository
        self._dead_letter = dead_letter
        self._settings = settings
        self._limits = Limits.from_settings(settings)
        self._flush = Flush()
        self._storing: list[asyncio.Task[None]] = []  # oldest first
        self._ticker: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._consumer: Committer | None = None
        self.taken = 0  # readings taken since the start

    async def take(self, records: Sequence[SourceRecord], consumer: Committer) -> None:
        """Adds a batch to the flush; stores the flush once it is full (waiting while the one
        before is still being stored)."""
        self._consumer = consumer
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name="ingestor flush by age")
        now = datetime.now(UTC)
        async with self._lock:
            flush = self._flush
            if not flush:
                flush.began = time.monotonic()  # its age counts from its first record
            before = flush.readings.count
            for index, record in enumerate(records):
                if index % RECORDS_PER_TURN == 0:
                    # The consumer sends its next fetch, a flush in the store goes on, meanwhile.
                    await asyncio.sleep(0)
                try:
                    flush.readings.add(record, self._limits, now)
                except Rejected as error:
                    flush.refused.append((record, str(error)))
                except Exception as error:
                    # Decoding is pure: this record would fail the same way for ever.
                    log.exception(
                        "%s[%s]@%s could not be decoded", record.topic, record.partition, record.offset
                    )
                    flush.refused.append((record, f"could not be decoded: {type(error).__name__}: {error}"))
                flush.records.append(record)
                flush.ends[TopicPartition(record.topic, record.partition)] = record.offset + 1
            self.taken += flush.readings.count - before
        if flush.readings.count >= self._settings.flush_readings:
            await self.hand_over()

    async def hand_over(self) -> None:
        """Starts storing the flush so far: while the one before is still in the store (its
        segments built meanwhile), not while the one before that is."""
        async with self._lock:
            flush, self._flush = self._flush, Flush()
            if not flush:
                return
            self._storing = [task for task in self._storing if not task.done()]
            while len(self._storing) >= FLUSHES_IN_FLIGHT:
                # Shielded: a cancelled caller (the age check closing) must not cancel a store.
                await asyncio.shield(self._storing.pop(0))
            before = self._storing[-1] if self._storing else None
            self._storing.append(asyncio.create_task(self._store(flush, before), name="ingestor flush"))

    async def flush(self) -> None:
        """Stores (and commits) what was taken so far, and waits until that is done."""
        await self.hand_over()
        await asyncio.shield(asyncio.gather(*self._storing))

    async def close(self) -> None:
        """Stops the age check and any flush being stored (through a store outage, it would wait
        for ever): nothing of theirs is committed, so it comes again, and adds only what is missing."""
        for task in [self._ticker, *self._storing]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _tick(self) -> None:
        period = self._settings.flush_seconds
        while True:
            await asyncio.sleep(period / 4)
            if self._flush and time.monotonic() - self._flush.began >= period:
                await self.hand_over()

    async def _store(self, flush: Flush, before: asyncio.Task[None] | None) -> None:
        """Stores the flush, then publishes its dead letters, then commits it after the flush
        ``before`` it; never raises (a flush is never dropped: the next one waits for it)."""
        refused: list[tuple[SourceRecord, str]] | None = None
        while refused is None:
            try:
                refused = flush.refused + await self._write(flush)
            except Exception as error:
                if not is_transient(error):
                    log.exception(
                        "a flush of %d records could not be handled; it is dead-lettered", len(flush)
                    )
                    reason = f"could not be handled: {type(error).__name__}: {error}"
                    refused = [(record, reason) for record in flush.records]
                    break
                log.warning("a flush of %d records was not stored (%s); trying again", len(flush), error)
                await asyncio.sleep(self._settings.retry_backoff_seconds)
        while True:
            try:
                await asyncio.gather(*(self._dead_letter(record, reason) for record, reason in refused))
                break
            except Exception as error:
                log.warning("dead letters of a flush not published (%s); trying again", error)
                await asyncio.sleep(self._settings.retry_backoff_seconds)
        if before is not None:
            await before
        await self._commit(flush.ends)

    async def _write(self, flush: Flush) -> list[tuple[SourceRecord, str]]:
        """Stores the flush's readings; returns the records of segments the store refused."""
        arrived_ms = int(time.time() * 1000)
        added = await self._repository.add(segments_from(flush.readings.frame(), arrived_ms))
        if added.replayed:
            log.info("a replay: %d readings were stored already", added.replayed)
        return _sources(flush.records, added.refused)

    async def _commit(self, ends: dict[TopicPartition, int]) -> None:
        """Commits the flush's offsets for the partitions still ours (another consumer, given
        one since, reads it again from its last commit: a replay, which adds nothing)."""
        if self._consumer is None:
            return
        ours = self._consumer.assignment()
        offsets = {partition: offset for partition, offset in ends.items() if partition in ours}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as error:
            log.warning("offsets %s not committed (%s): they come again", offsets, error)


def _sources(
    records: list[SourceRecord], refused: list[tuple[Segment, str]]
) -> list[tuple[SourceRecord, str]]:
    """The records whose readings were in the segments the store refused, with its reason."""
    if not refused:
        return []
    by_place = {(record.partition, record.offset): record for record in records}
    found: dict[tuple[int, int], str] = {}
    for segment, reason in refused:
        assert segment.source is not None
        assert segment.positions is not None
        for offset in set((segment.positions >> POSITION_BITS).tolist()):
            found.setdefault((segment.source.partition, offset), reason)
    return [(by_place[place], reason) for place, reason in found.items() if place in by_place]

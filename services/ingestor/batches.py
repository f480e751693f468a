"""The ingestor's use case: one batch of Kafka records in, stored items and dead letters out.

A batch is stored with one bulk write per topic; a record that cannot be decoded, or whose
items the store refuses for what they are, goes to the dead-letter topic and the rest of the
batch is stored all the same. Only an error worth retrying (the store unreachable, say) escapes,
so the caller leaves the batch's offsets uncommitted and Kafka delivers it again; the writes are
idempotent, so storing a batch twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from exporter import metrics
from exporter.topics import Topic
from ingestor.decoding import Headers, Rejected

ItemT = TypeVar("ItemT")
log = logging.getLogger(__name__)


class SourceRecord(Protocol):
    """What the ingestor reads of a consumed Kafka record (aiokafka's ``ConsumerRecord``)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class StoreOutcome(Protocol):
    @property
    def failures(self) -> Mapping[int, str]:
        """Index of each item the store refused for good → why."""


@dataclass(frozen=True)
class Lane(Generic[ItemT]):
    """One ingest topic: how its messages decode and where their items go."""

    topic: Topic
    decode: Callable[[bytes | None, Headers], list[ItemT]]  # raises Rejected
    store: Callable[[list[ItemT]], Awaitable[StoreOutcome]]


DeadLetter = Callable[[SourceRecord, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BatchReport:
    records: int
    items: int
    dead_lettered: int


async def ingest_batch(
    lane: Lane[ItemT], records: Sequence[SourceRecord], dead_letter: DeadLetter
) -> BatchReport:
    """Stores the batch's good items and dead-letters its bad records; returns once both are done."""
    items: list[ItemT] = []
    sources: list[int] = []  # for each item, the position of its record in the batch
    refused: dict[int, str] = {}
    for position, record in enumerate(records):
        try:
            decoded = lane.decode(record.value, record.headers)
        except Rejected as error:
            refused[position] = str(error)
            continue
        except Exception as error:
            # Decoding is pure, so this record would fail the same way forever: never let one
            # record stop its partition.
            log.exception("%s[%s]@%s could not be decoded", record.topic, record.partition, record.offset)
            refused[position] = f"could not be decoded: {type(error).__name__}: {error}"
            continue
        items += decoded
        sources += [position] * len(decoded)
    outcome = await lane.store(items)
    metrics.INGESTED.labels(lane.topic.value).inc(len(items) - len(outcome.failures))
    for index, reason in outcome.failures.items():
        refused.setdefault(sources[index], reason)
    await asyncio.gather(*(dead_letter(records[position], reason) for position, reason in refused.items()))
    return BatchReport(records=len(records), items=len(items), dead_lettered=len(refused))

"""The ingestor as a FastStream application: upstream measurements, things, entities and grants stored.

Each ingest topic has a batch subscriber in its own consumer group (``<group>.<topic>``, so a
rebalance on one topic never pauses another). Things and entities: FastStream commits a batch's
offsets only after the handler returned, i.e. after the batch is stored and its dead letters
are published; when the handler raises, it rewinds the partitions to the batch's first offsets
and the same records come again (at least once; the writes are idempotent). Measurements are
stored many batches at a time, and committed by the ``Flusher`` after each flush is stored.
Grants: see ``ingestor.grant_events``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from exporter.adapters.kafka import publish_dead_letter, subscriber_options, undecoded
from exporter.adapters.mongo.measurements import MeasurementRepository
from exporter.runtime import Runtime, stream_service
from exporter.settings import Settings
from exporter.settings.ingestor import IngestorSettings
from exporter.topics import Topic
from ingestor.batches import Lane, SourceRecord, ingest_batch
from ingestor.compaction import compact_in_background
from ingestor.decoding import Limits, decode_entity, decode_thing
from ingestor.flushing import Committer, Flusher
from ingestor.grant_events import follow_grants

log = logging.getLogger(__name__)
# How long the measurements' consumer waits for records before it looks again.
POLL_MS = 10


def lanes(runtime: Runtime, settings: IngestorSettings) -> list[Lane[Any]]:
    """The topics of upstream facts stored a batch at a time, each with its decoder and repository."""
    limits = Limits.from_settings(settings)
    return [
        Lane(
            Topic.THINGS,
            lambda value, headers: decode_thing(value, headers, limits),
            runtime.things.upsert_many,
        ),
        Lane(
            Topic.ENTITIES,
            lambda value, headers: decode_entity(value, headers, limits),
            runtime.entities.upsert_many,
        ),
    ]


def subscribe_measurements(broker: KafkaBroker, flusher: Flusher, settings: IngestorSettings) -> None:
    """The measurements' batch consumer on ``broker``: ``flusher`` stores and commits."""

    @broker.subscriber(
        Topic.MEASUREMENTS.value,
        batch=True,
        max_records=settings.batch_max_messages,
        # FastStream sleeps this long whenever the consumer has nothing fetched yet: at its 200 ms
        # default, a busy topic often waited on a sleep rather than on the broker.
        batch_timeout_ms=POLL_MS,
        decoder=undecoded,
        **subscriber_options(f"{settings.group_id}.{Topic.MEASUREMENTS.value}")
        | {"ack_policy": AckPolicy.MANUAL},
    )
    async def on_batch(message: KafkaMessage) -> None:
        await flusher.take(message.raw_message, cast("Committer", message.consumer))


def measurement_flusher(
    broker: KafkaBroker, repository: MeasurementRepository, settings: IngestorSettings
) -> Flusher:
    """The measurements' ``Flusher``, dead-lettering through ``broker``."""

    async def dead_letter(record: SourceRecord, reason: str) -> None:
        await publish_dead_letter(broker, record, reason)

    return Flusher(repository, dead_letter, settings)


def subscribe(broker: KafkaBroker, lane: Lane[Any], settings: IngestorSettings) -> None:
    """A batch consumer for ``lane`` on ``broker``."""

    async def dead_letter(record: SourceRecord, reason: str) -> None:
        await publish_dead_letter(broker, record, reason)

    @broker.subscriber(
        lane.topic.value,
        batch=True,
        max_records=settings.batch_max_messages,
        decoder=undecoded,
        **subscriber_options(f"{settings.group_id}.{lane.topic.value}"),
    )
    async def on_batch(message: KafkaMessage) -> None:
        records: tuple[SourceRecord, ...] = message.raw_message
        try:
            report = await ingest_batch(lane, records, dead_letter)
        except Exception:
            log.exception("a batch of %d from %s was not stored; it comes again", len(records), lane.topic)
            await asyncio.sleep(settings.retry_backoff_seconds)
            raise
        log.debug("%s: %s", lane.topic, report)


def create_app(settings: Settings) -> FastStream:
    app, runtime = stream_service(settings, "Exporter ingestor", relay=False)
    for lane in lanes(runtime, settings.ingestor):
        subscribe(runtime.broker, lane, settings.ingestor)
    flusher = measurement_flusher(runtime.broker, runtime.measurements, settings.ingestor)
    subscribe_measurements(runtime.broker, flusher, settings.ingestor)
    app.on_shutdown(flusher.close)
    follow_grants(runtime.broker, runtime.grants, grants_group(settings.ingestor))
    compact_in_background(app, runtime, settings.ingestor.compaction)
    return app


def grants_group(settings: IngestorSettings) -> str:
    """The grants' consumer group, named like the ingest topics' groups."""
    return f"{settings.group_id}.{Topic.IAM_POLICY_UPDATED.value}"

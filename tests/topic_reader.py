"""Reading a topic from its start, as tests and benchmarks check what services published."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer

from exporter.adapters.kafka import client_options
from exporter.settings import Settings


@asynccontextmanager
async def topic_reader(settings: Settings, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer outside any group, from the earliest offset, committing nothing."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(settings.kafka),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()

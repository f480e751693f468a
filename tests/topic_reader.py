"""Reading a topic from its start, as tests and benchmarks check what services published."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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


def json_object(value: bytes | None) -> dict[str, Any]:
    """A record's value as a JSON object, or {} for anything else: the fuzz and dead-letter tests
    leave broken and hostile records on the shared topics."""
    try:
        decoded = json.loads(value or b"")
    except (ValueError, RecursionError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def json_field(value: bytes | None, *path: str) -> Any:
    """``value``'s JSON field at ``path`` (``"data", "jobId"``), or None wherever the record has
    another shape (see ``json_object``)."""
    node: Any = json_object(value)
    for name in path:
        node = node.get(name) if isinstance(node, dict) else None
    return node


async def all_values(settings: Settings, topic: str) -> list[bytes | None]:
    """Every record value on ``topic`` so far. The embedded broker's end offsets are unreliable,
    so it reads until the topic has been quiet for a few polls."""
    values: list[bytes | None] = []
    async with topic_reader(settings, topic) as consumer:
        quiet = 0
        while quiet < 5:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            records = [record for records in batch.values() for record in records]
            quiet = 0 if records else quiet + 1
            values.extend(record.value for record in records)
    return values

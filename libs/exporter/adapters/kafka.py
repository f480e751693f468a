"""Kafka adapters: the broker, topic creation, a publisher for the outbox and dead-lettering.

Kept to what every Kafka-protocol broker supports: no idempotent producer and no transactions
(the embedded broker has neither); exactly-once effects come from idempotent consumers and the
outbox instead. Consumers start from the earliest offset when their group has none.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import MessageSizeTooLargeError, TopicAlreadyExistsError
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from exporter.settings import Settings
from exporter.topics import Topic, all_topic_names

log = logging.getLogger(__name__)

MAX_REASON_LENGTH = 2_000


def make_broker(settings: Settings) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka.bootstrap_servers,
        client_id=settings.kafka.client_id,
        enable_idempotence=settings.kafka.enable_idempotence,
        middlewares=[DeadLetterMiddleware],
    )


def subscriber_options(group_id: str) -> dict[str, Any]:
    """One consumer policy for every service: commit after handling, redeliver on error."""
    return {
        "group_id": group_id,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
    }


async def undecoded(message: StreamMessage[Any]) -> None:
    """A batch subscriber's decoder when the handler decodes each record itself: FastStream would
    decode the whole batch first, and one bad record would then fail all of it.
    """


async def ensure_topics(settings: Settings) -> None:
    """Creates every registered topic (and its dead-letter topic) that does not exist yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in all_topic_names() if name not in existing]
        if missing:
            new = [
                NewTopic(name, settings.kafka.partitions, settings.kafka.replication_factor)
                for name in missing
            ]
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                log.debug("topics created concurrently by another service")
    finally:
        await admin.close()


class KafkaPublisher:
    """Publishes JSON payloads keyed for ordering; the outbox relay's way out."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def publish_raw(self, topic: str, key: str, payload: dict[str, object]) -> None:
        await self._broker.publish(
            json.dumps(payload, separators=(",", ":")).encode(),
            topic=topic,
            key=key.encode(),
            headers={"content-type": "application/json"},
        )


def dead_letter_headers(record: Any, reason: str) -> dict[str, str]:
    """The record's own headers (its tenant, say), plus why it was refused and where it came from."""
    own = {
        key: value.decode(errors="replace")
        for key, value in record.headers or ()
        if not key.startswith("x-dlq-")
    }
    return {
        **own,
        "x-dlq-reason": reason[:MAX_REASON_LENGTH],
        "x-dlq-source-topic": str(record.topic),
        "x-dlq-source-partition": str(record.partition),
        "x-dlq-source-offset": str(record.offset),
    }


async def publish_dead_letter(broker: KafkaBroker, record: Any, reason: str) -> None:
    """Parks a consumed record on ``<topic>.dlq``: its original bytes and key, the reason in headers.

    A record at the size limit may not fit once the headers are added; then the letter goes
    without its bytes (the source offset still finds them) rather than blocking the consumer.
    """
    log.warning("dead-lettered %s[%s]@%s: %s", record.topic, record.partition, record.offset, reason)
    topic = Topic(record.topic).dead_letter
    headers = dead_letter_headers(record, reason)
    try:
        await broker.publish(record.value, topic=topic, key=record.key, headers=headers)
    except MessageSizeTooLargeError:
        reason = f"{reason} (the original {len(record.value)} bytes are too large to keep here)"
        await broker.publish(b"", topic=topic, key=record.key, headers=dead_letter_headers(record, reason))


def describe_validation_error(error: ValidationError) -> str:
    """``field.path: message`` for each problem, the way the HTTP API words them too."""
    return "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or 'message'}: {issue['msg']}"
        for issue in error.errors(include_url=False)
    )


class DeadLetterMiddleware(BaseMiddleware):
    """A message that cannot be decoded into its model goes to ``<topic>.dlq`` with the reason.

    The original bytes and key are kept; the source topic, partition and offset travel in
    headers. The consumer then carries on with the next message.
    """

    async def consume_scope(self, call_next: Callable[..., Any], msg: StreamMessage[Any]) -> Any:
        try:
            return await call_next(msg)
        except ValidationError as error:
            reason = describe_validation_error(error)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            reason = f"message is not valid JSON: {error}"
        broker: KafkaBroker = self.context.get("broker")
        await publish_dead_letter(broker, msg.raw_message, reason)
        return None

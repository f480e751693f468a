"""Kafka adapters: the broker, client security, topic creation, a signing publisher for the
outbox, and the intake every consumer shares (signature checks and dead-lettering).

Kept to what every Kafka-protocol broker supports: no transactions, and the idempotent producer
only where a setting turns it on (the embedded broker has neither); exactly-once effects come
from idempotent consumers and the outbox instead. Consumers start from the earliest offset when
their group has none.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import MessageSizeTooLargeError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from faststream import BaseMiddleware
from faststream._internal.types import BrokerMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.security import parse_security
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from exporter.adapters.errors import Undeliverable, is_transient
from exporter.contracts.events import CLOUDEVENTS_CONTENT_TYPE
from exporter.log_context import log_context, trace_id_of
from exporter.settings import KafkaSettings, Settings
from exporter.signing import SIGNATURE_HEADER, Producer, Refused, Verifier, own_producer
from exporter.topics import Topic, all_topic_names

log = logging.getLogger(__name__)

MAX_REASON_LENGTH = 2_000
BROKER_LOGGER = "faststream.broker"
# Events (export.requested, ...) are small; a larger record is not read twice for its id.
MAX_EVENT_ID_SCAN = 64 * 1024
SASL = {"SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512, "PLAIN": SASLPlaintext}


def make_broker(settings: Settings) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka.bootstrap_servers,
        client_id=settings.kafka.client_id,
        **producer_options(settings.kafka),
        security=broker_security(settings.kafka),
        parser=lenient_headers,
        decoder=json_suffix,
        middlewares=[intake(Verifier.from_settings(settings.kafka))],
        # Through the process's handler (see ``exporter.log_context``), not one of FastStream's own.
        logger=logging.getLogger(BROKER_LOGGER),
    )


def producer_options(settings: KafkaSettings) -> dict[str, Any]:
    """How the services' producer is acknowledged: an event the outbox deletes as published must
    survive a broker's loss (``acks``), and a retried send must not be written twice where the
    broker supports the idempotent producer."""
    return {"acks": settings.acks, "enable_idempotence": settings.enable_idempotence}


async def lenient_headers(
    msg: Any, original: Callable[[Any], Awaitable[StreamMessage[Any]]]
) -> StreamMessage[Any]:
    """FastStream decodes every header as UTF-8 before any middleware runs, so one header of other
    bytes would fail its record (a batch subscriber's whole batch) on every delivery, for ever.
    Such records are parsed from copies with those bytes replaced; the message keeps the original
    records, whose exact bytes the intake's checks and the dead letter read."""
    try:
        return await original(msg)
    except UnicodeDecodeError:
        copies = tuple(
            dataclasses.replace(
                record,
                headers=[(key, value.decode(errors="replace").encode()) for key, value in record.headers],
            )
            for record in records_of(msg)
        )
        message = await original(copies if isinstance(msg, tuple) else copies[0])
        message.raw_message = msg
        return message


async def json_suffix(
    msg: StreamMessage[Any], original: Callable[[StreamMessage[Any]], Awaitable[Any]]
) -> Any:
    """Decodes a ``+json`` media type (our events' ``application/cloudevents+json``) as JSON:
    FastStream does so only for ``application/json`` and would hand a handler the bytes."""
    media_type = (msg.content_type or "").partition(";")[0].strip()
    if media_type.endswith("+json"):
        return json.loads(msg.body)
    return await original(msg)


def broker_security(settings: KafkaSettings) -> BaseSecurity | None:
    """FastStream's form of the connection security settings; None is plaintext."""
    tls = settings.security_protocol in ("SSL", "SASL_SSL")
    context = tls_context(settings) if tls else None
    if settings.security_protocol.startswith("SASL_"):
        assert settings.username is not None  # KafkaSettings requires both with SASL
        assert settings.password is not None
        sasl = SASL[settings.sasl_mechanism]
        return sasl(settings.username, settings.password.get_secret_value(), context, use_ssl=tls)
    return BaseSecurity(context, use_ssl=True) if tls else None


def tls_context(settings: KafkaSettings) -> ssl.SSLContext:
    """Verifies the brokers against ``ca_file`` (or the system's CAs); presents the client certificate."""
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.ca_file, certfile=settings.cert_file, keyfile=settings.key_file
    )
    return context


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Where and how a plain aiokafka client (admin, producer, consumer) connects."""
    return {"bootstrap_servers": settings.bootstrap_servers, **parse_security(broker_security(settings))}


def subscriber_options(group_id: str, max_poll_interval_seconds: float | None = None) -> dict[str, Any]:
    """One consumer policy for every service: commit after handling, redeliver on error.
    ``max_poll_interval_seconds``: instead of the client's default (300 s)."""
    options: dict[str, Any] = {
        "group_id": group_id,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
    }
    if max_poll_interval_seconds is not None:
        options["max_poll_interval_ms"] = round(max_poll_interval_seconds * 1000)
    return options


async def undecoded(message: StreamMessage[Any]) -> None:
    """A batch subscriber's decoder when the handler decodes each record itself: FastStream would
    decode the whole batch first, and one bad record would then fail all of it.
    """


async def ensure_topics(settings: Settings) -> None:
    """Creates every registered topic (and its dead-letter topic) that does not exist yet."""
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
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
    """Publishes JSON payloads keyed for ordering and signed with the services' key; the outbox
    relay's way out."""

    def __init__(self, broker: KafkaBroker, signer: Producer) -> None:
        self._broker = broker
        self._signer = signer

    @classmethod
    def from_settings(cls, broker: KafkaBroker, settings: KafkaSettings) -> KafkaPublisher:
        return cls(broker, own_producer(settings))

    async def publish_raw(self, topic: str, key: str, payload: dict[str, object]) -> None:
        """Raises ``Undeliverable`` for a message larger than the broker takes, once a letter
        saying so (the event's id and the reason, not its bytes) is on ``<topic>.dlq``."""
        value = json.dumps(payload, separators=(",", ":")).encode()
        try:
            await self._broker.publish(
                value,
                topic=topic,
                key=key.encode(),
                headers={"content-type": CLOUDEVENTS_CONTENT_TYPE, **self._signer.headers(topic, value)},
            )
        except MessageSizeTooLargeError as error:
            reason = f"the event is {len(value)} bytes, more than the broker takes"
            headers = {"x-dlq-reason": reason, "x-dlq-event-id": str(payload.get("id"))}
            await self._broker.publish(b"", topic=Topic(topic).dead_letter, key=key.encode(), headers=headers)
            raise Undeliverable(reason) from error


def dead_letter_headers(record: Any, reason: str) -> dict[str, str]:
    """The record's own headers (its tenant, say; not its signature), plus why it was refused and
    where it came from."""
    own = {
        key: value.decode(errors="replace")
        for key, value in record.headers or ()
        if not key.startswith("x-dlq-") and key != SIGNATURE_HEADER
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
        await broker.publish(record.value or b"", topic=topic, key=record.key, headers=headers)
    except MessageSizeTooLargeError:
        reason = f"{reason} (the original {len(record.value or b'')} bytes are too large to keep here)"
        await broker.publish(b"", topic=topic, key=record.key, headers=dead_letter_headers(record, reason))


def records_of(raw: Any) -> tuple[Any, ...]:
    """The records of a consumed message: a batch subscriber's tuple, or the one record."""
    return raw if isinstance(raw, tuple) else (raw,)


def _topic(msg: StreamMessage[Any]) -> str:
    records = records_of(msg.raw_message)
    return str(records[0].topic) if records else "?"


def message_ids(records: tuple[Any, ...]) -> dict[str, str | int | None]:
    """The ids a consumed message's log lines carry: its topic, partition and offset, and its
    trace id (a W3C ``traceparent`` header's, else the event's own id). A batch has no one
    offset or trace: its topic, and its partition when all its records share one."""
    if not records:
        return {}
    partitions = {record.partition for record in records}
    ids: dict[str, str | int | None] = {
        "topic": str(records[0].topic),
        "partition": partitions.pop() if len(partitions) == 1 else None,
    }
    if len(records) == 1:
        record = records[0]
        headers = dict(record.headers or ())
        ids["offset"] = record.offset
        ids["trace_id"] = trace_id_of(headers.get("traceparent")) or event_id(record.value)
    return ids


def event_id(value: bytes | None) -> str | None:
    """The ``id`` of a JSON event not larger than ``MAX_EVENT_ID_SCAN`` bytes, else None."""
    if not value or len(value) > MAX_EVENT_ID_SCAN or not value.lstrip().startswith(b"{"):
        return None
    try:
        found = json.loads(value).get("id")
    except (ValueError, RecursionError):
        return None
    return found if isinstance(found, str) else None


def describe_validation_error(error: ValidationError) -> str:
    """``field.path: message`` for each problem, the way the HTTP API words them too."""
    return "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or 'message'}: {issue['msg']}"
        for issue in error.errors(include_url=False)
    )


def intake(verifier: Verifier) -> BrokerMiddleware[Any, Any]:
    """The broker middleware every subscriber gets: ``DeadLetterMiddleware`` with ``verifier``."""
    return functools.partial(DeadLetterMiddleware, verifier=verifier)


class DeadLetterMiddleware(BaseMiddleware):
    """The intake of every consumer: a record that is not signed as its topic requires, or cannot
    be decoded into its model, goes to ``<topic>.dlq`` with the reason.

    Signatures are checked here, before any handler or decoder sees the record, for single and
    batch subscribers alike: a batch goes on without its refused records. The original bytes and
    key are kept; the source topic, partition and offset travel in headers. The consumer then
    carries on with the next message.
    """

    def __init__(self, msg: Any, /, *, context: Any, verifier: Verifier) -> None:
        super().__init__(msg, context=context)
        self._verifier = verifier

    async def consume_scope(self, call_next: Callable[..., Any], msg: StreamMessage[Any]) -> Any:
        with log_context(**message_ids(records_of(msg.raw_message))):
            return await self._consume(call_next, msg)

    async def _consume(self, call_next: Callable[..., Any], msg: StreamMessage[Any]) -> Any:
        broker: KafkaBroker = self.context.get("broker")
        if not await self._admit(broker, msg):
            return None
        try:
            return await call_next(msg)
        except ValidationError as error:
            reason = describe_validation_error(error)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            reason = f"message is not valid JSON: {error}"
        except Refused as error:  # a handler's own refusal, which only the data could show
            reason = str(error)
        except Exception as error:
            if is_transient(error):
                raise  # the store or the network, not the message: it comes again
            # A poison message: redelivered, it would fail again and hold up every one behind it.
            log.exception("a message on %s could not be handled; it is dead-lettered", _topic(msg))
            reason = f"could not be handled: {type(error).__name__}: {error}"
        records = records_of(msg.raw_message)
        await asyncio.gather(*(publish_dead_letter(broker, record, reason) for record in records))
        return None

    async def _admit(self, broker: KafkaBroker, msg: StreamMessage[Any]) -> bool:
        """Dead-letters the refused records; False when none is left to handle. A batch message
        keeps only its admitted records (its handlers read ``raw_message``)."""
        admitted, refused = [], []
        for record in records_of(msg.raw_message):
            try:
                self._verifier.check(record.topic, record.value, record.headers)
            except Refused as error:
                refused.append((record, str(error)))
            else:
                admitted.append(record)
        if not refused:
            return True
        await asyncio.gather(*(publish_dead_letter(broker, record, reason) for record, reason in refused))
        if isinstance(msg.raw_message, tuple) and admitted:
            msg.raw_message = tuple(admitted)
            msg.body = [record.value or b"" for record in admitted]
        return bool(admitted)

"""Who published a Kafka record: HMAC signatures over a record's topic and value, and the rule
that decides which signed records a consumer accepts.

Anyone who can produce to the cluster could otherwise publish an ``export.requested`` or a grant
for any tenant. So every record on a signed topic carries the publisher's key id and an
HMAC-SHA256 (hex) of the topic name and the exact value bytes: a signed record cannot be altered,
nor replayed onto another topic. The services sign with their own key, which may publish anything
for any tenant; an upstream producer's key may publish only on its topics, for its tenants.
Pure: no I/O. The Kafka side is ``exporter.adapters.kafka``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic_core import from_json

from exporter.settings import KafkaSettings

KEY_ID_HEADER = "x-signature-key-id"
SIGNATURE_HEADER = "x-signature"
# The tenant of an ingest message sent as a bare payload (``ingestor.decoding``).
TENANT_HEADER = "x-tenant"
ANY = "*"
Headers = Sequence[tuple[str, bytes]]


def signature(secret: bytes, topic: str, value: bytes) -> str:
    """HMAC-SHA256 (hex) of the topic name, a NUL (no topic name holds one) and the value."""
    mac = hmac.new(secret, topic.encode() + b"\0", hashlib.sha256)
    mac.update(value)
    return mac.hexdigest()


@dataclass(frozen=True)
class Producer:
    """A key that signs records: whose it is, and where and for whom it may publish."""

    key_id: str
    secret: bytes = field(repr=False)
    topics: frozenset[str] = frozenset({ANY})
    tenants: frozenset[str] = frozenset({ANY})

    def headers(self, topic: str, value: bytes) -> dict[str, str]:
        """The headers that sign ``value`` for ``topic`` as this producer."""
        return {KEY_ID_HEADER: self.key_id, SIGNATURE_HEADER: signature(self.secret, topic, value)}

    def raw_headers(self, topic: str, value: bytes) -> list[tuple[str, bytes]]:
        """``headers`` as a plain aiokafka producer takes them."""
        return [(name, header.encode()) for name, header in self.headers(topic, value).items()]

    def may_publish_to(self, topic: str) -> bool:
        return ANY in self.topics or topic in self.topics

    def may_act_for(self, tenant: str) -> bool:
        return ANY in self.tenants or tenant in self.tenants


class Refused(Exception):
    """A record its consumer must not accept; the text is the reason, free of secrets."""


def own_producer(settings: KafkaSettings) -> Producer:
    """The services' own key: they publish every event, for every tenant."""
    return Producer(settings.signing_key_id, settings.signing_secret.get_secret_value().encode())


def trusted_producers(settings: KafkaSettings) -> list[Producer]:
    """Our own key and every configured upstream producer."""
    upstream = [
        Producer(key_id, p.secret.get_secret_value().encode(), frozenset(p.topics), frozenset(p.tenants))
        for key_id, p in settings.producers.items()
    ]
    return [own_producer(settings), *upstream]


class Verifier:
    """Decides whether a consumed record comes from a producer allowed to publish it."""

    def __init__(self, producers: Iterable[Producer], signed_topics: Iterable[str]) -> None:
        self._producers = {producer.key_id: producer for producer in producers}
        self._signed_topics = frozenset(signed_topics)

    @classmethod
    def from_settings(cls, settings: KafkaSettings) -> Verifier:
        return cls(trusted_producers(settings), settings.signed_topics)

    def check(self, topic: str, value: bytes | None, headers: Headers) -> None:
        """Returns when the record may be consumed; raises ``Refused`` with the reason otherwise."""
        if topic not in self._signed_topics:
            return
        producer = self._signer(topic, value or b"", headers)
        if not producer.may_publish_to(topic):
            raise Refused(f"topic not allowed: key {producer.key_id!r} may not publish to {topic!r}")
        if ANY in producer.tenants:
            return
        tenants = claimed_tenants(value or b"", headers)
        if not tenants:
            raise Refused(f"tenant not allowed: key {producer.key_id!r} must name the tenant it acts for")
        if denied := sorted(tenant for tenant in tenants if not producer.may_act_for(tenant)):
            raise Refused(f"tenant not allowed: key {producer.key_id!r} may not act for {denied[0][:100]!r}")

    def _signer(self, topic: str, value: bytes, headers: Headers) -> Producer:
        key_id, given = _one_header(headers, KEY_ID_HEADER), _one_header(headers, SIGNATURE_HEADER)
        if key_id is None or given is None:
            raise Refused(f"unsigned: {KEY_ID_HEADER} and {SIGNATURE_HEADER} headers are required")
        producer = self._producers.get(key_id.decode(errors="replace"))
        if producer is None:
            raise Refused(f"unknown key id {key_id[:100].decode(errors='replace')!r}")
        expected = signature(producer.secret, topic, value).encode()
        if not hmac.compare_digest(expected, given):
            raise Refused(f"bad signature for key {producer.key_id!r}")
        return producer


def _one_header(headers: Headers, name: str) -> bytes | None:
    """The header's value; a repeated one is refused, as its readers could disagree on which counts."""
    values = [value for key, value in headers if key == name]
    if len(values) > 1:
        raise Refused(f"the {name} header is repeated")
    return values[0] if values else None


def claimed_tenants(value: bytes, headers: Headers) -> set[str]:
    """Every tenant the record says it is for: the envelope's ``tenant`` and the tenant header."""
    tenants = {raw.decode(errors="replace") for key, raw in headers if key == TENANT_HEADER}
    try:
        payload = from_json(value)
    except ValueError:
        return tenants
    if isinstance(payload, Mapping) and isinstance(payload.get("tenant"), str):
        tenants.add(payload["tenant"])
    return tenants

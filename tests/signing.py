"""Signing as a configured producer, for tests and benchmarks that publish by hand."""

from __future__ import annotations

from pydantic import SecretStr

from exporter.settings import ProducerSettings, Settings
from exporter.signing import Producer, own_producer, trusted_producers


def signer(settings: Settings, key_id: str | None = None) -> Producer:
    """The producer ``key_id`` of ``settings`` (None: the services' own key), to sign with."""
    if key_id is None:
        return own_producer(settings.kafka)
    return next(producer for producer in trusted_producers(settings.kafka) if producer.key_id == key_id)


def with_producer(settings: Settings, key_id: str, topics: list[str], tenants: list[str]) -> Settings:
    """``settings`` trusting one more upstream producer, whose secret is made up from its key id."""
    secret = SecretStr(f"{key_id}-secret-for-tests-only")
    producer = ProducerSettings(secret=secret, topics=topics, tenants=tenants)
    kafka = settings.kafka.model_copy(update={"producers": {**settings.kafka.producers, key_id: producer}})
    return settings.model_copy(update={"kafka": kafka})

"""From one Kafka message's bytes and headers to what gets stored, or the reason it cannot be.

Every ingest topic takes a message in one of two forms:

- an envelope (a JSON object with ``data``): ``MeasurementsPublished``, ``ThingUpdated`` or
  ``EntityUpdated``, whose ``tenant`` is the tenant;
- the bare payload, with the tenant in the ``x-tenant`` header. On ``messages`` the payload is a
  pack (an object with ``records``), a JSON array of records or a single record.

A tenant header next to an envelope must agree with it. Pure functions: no I/O, the clock given.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json

from exporter.adapters.kafka import describe_validation_error
from exporter.contracts.base import WireModel
from exporter.contracts.events import (
    EntityUpdated,
    Envelope,
    MeasurementsPublished,
    Tenant,
    ThingUpdated,
)
from exporter.contracts.ingest import (
    Entity,
    Measurement,
    MeasurementPack,
    RecordError,
    Thing,
    resolve,
)
from exporter.settings.ingestor import IngestorSettings
from exporter.signing import TENANT_HEADER

Headers = Sequence[tuple[str, bytes]]
DataT = TypeVar("DataT", bound=WireModel)
_TENANT = TypeAdapter(Tenant)


class Rejected(Exception):
    """A message that cannot be stored as it is; the text is the reason the dead-letter topic keeps."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_bytes: int
    max_future_skew: timedelta

    @classmethod
    def from_settings(cls, settings: IngestorSettings) -> Limits:
        return cls(settings.max_message_bytes, timedelta(seconds=settings.max_future_skew_seconds))


def open_message(
    value: bytes | None,
    headers: Headers,
    limits: Limits,
    envelope: type[Envelope[DataT]],
    bare: Callable[[Any], DataT],
) -> tuple[str, DataT, str]:
    """(tenant, payload, the path of the payload's fields in reasons) of one message."""
    if not value:
        raise Rejected("message is empty")
    if len(value) > limits.max_message_bytes:
        raise Rejected(f"message is {len(value)} bytes, more than the {limits.max_message_bytes} allowed")
    try:
        payload = from_json(value)
    except ValueError as error:
        raise Rejected(f"message is not valid JSON: {error}") from error
    header = tenant_header(headers)
    try:
        if isinstance(payload, dict) and "data" in payload:
            event = envelope.model_validate(payload)
            if header is not None and header != event.tenant:
                raise Rejected(
                    f"the {TENANT_HEADER} header {header!r} differs from the envelope's tenant "
                    f"{event.tenant!r}"
                )
            return event.tenant, event.data, "data."
        if header is None:
            raise Rejected(f"tenant: required, as the {TENANT_HEADER} header or in an envelope")
        return header, bare(payload), ""
    except ValidationError as error:
        raise Rejected(describe_validation_error(error)) from error


def tenant_header(headers: Headers) -> str | None:
    raw = next((value for key, value in headers if key == TENANT_HEADER), None)
    return None if raw is None else _tenant(raw)


@functools.lru_cache(maxsize=4096)
def _tenant(raw: bytes) -> str:
    """A tenant header's name (checked once per name: every message carries one)."""
    try:
        return _TENANT.validate_python(raw.decode())
    except (UnicodeDecodeError, ValidationError) as error:
        raise Rejected(f"the {TENANT_HEADER} header is not a tenant name (1 to 100 characters)") from error


def bare_pack(payload: Any) -> MeasurementPack:
    """A pack as sent; a JSON array is a pack of its records, any other object a pack of one
    (so reasons name a single record ``records.0``)."""
    if isinstance(payload, list):
        payload = {"records": payload}
    elif not isinstance(payload, dict) or "records" not in payload:
        payload = {"records": [payload]}
    return MeasurementPack.model_validate(payload)


def decode_measurements(
    value: bytes | None, headers: Headers, limits: Limits, now: datetime
) -> list[Measurement]:
    tenant, pack, path = open_message(value, headers, limits, MeasurementsPublished, bare_pack)
    latest_ms = int((now + limits.max_future_skew).timestamp() * 1000)
    try:
        return resolve(tenant, pack, latest_ms, path)
    except RecordError as error:
        raise Rejected(str(error)) from error


def decode_thing(value: bytes | None, headers: Headers, limits: Limits) -> list[tuple[str, Thing]]:
    tenant, thing, _ = open_message(value, headers, limits, ThingUpdated, Thing.model_validate)
    return [(tenant, thing)]


def decode_entity(value: bytes | None, headers: Headers, limits: Limits) -> list[tuple[str, Entity]]:
    tenant, entity, _ = open_message(value, headers, limits, EntityUpdated, Entity.model_validate)
    return [(tenant, entity)]

"""Hostile Kafka records for every consumed topic, drawn from a seed, and what each consumer
must make of them.

A record is random bytes, broken or hostile JSON, or a valid event with one part mutated (a
field removed, replaced by a hostile value, an unknown field added, another tenant), sometimes
with hostile headers. ``refusal`` judges each one with the consumer's own rules (the ingestor's
decoders, the events' models), so the fuzzer can check that every refused record reached the
dead-letter topic, whatever the generator happened to make.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from exporter.contracts.events import (
    EntityUpdated,
    ExportCompleted,
    ExportCompletedData,
    ExportRequested,
    GrantChanged,
    GrantChangedData,
    MeasurementsPublished,
    PolicyStreamEvent,
    ThingUpdated,
)
from exporter.contracts.ingest import Entity, MeasurementPack, MeasurementRecord, Thing
from exporter.contracts.request import ExportRequestSpec
from exporter.domain.job_life import JobStatus
from exporter.domain.jobs import job_for
from exporter.settings import Settings
from exporter.signing import Producer, Refused, Verifier
from exporter.topics import Topic
from ingestor.decoding import Limits, Rejected, decode_entity, decode_measurements, decode_thing

Headers = list[tuple[str, bytes]]
# Values that broke services elsewhere: huge and negative numbers, far dates, format strings,
# path tricks, operators, control characters, empty and enormous text.
HOSTILE: list[Any] = [
    None,
    True,
    -1,
    0,
    2**63,
    10**30,
    -(10**30),
    1.5,
    "",
    "x" * 100_000,
    "\u0000\u202e",
    "%s%n%x{0}{__class__}",
    "${item.index:2000000000}",
    "../../etc/passwd",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "P3000Y",
    [],
    {},
    [[[[[]]]]],
    {"$where": "sleep(100000)"},
    {"$gt": ""},
    "another-tenant",
]


@dataclass(frozen=True, slots=True)
class FuzzRecord:
    topic: Topic
    value: bytes | None
    key: bytes | None
    headers: Headers = field(default_factory=list)
    how: str = ""  # what the generator did, for a failure message


def _base_events(tenant: str, rng: random.Random) -> dict[Topic, dict[str, Any]]:
    """One valid event per topic, as the JSON its producer would send."""
    now = datetime.now(UTC)
    suffix = f"{rng.getrandbits(48):012x}"
    request = ExportRequestSpec.model_validate(
        {
            "type": "oneTime",
            "format": {"extension": "csv"},
            "items": [{"params": {"target": {"value": f"urn:cpt:fz:nid:dev-{suffix}:temp"}}}],
            "notification": {"medium": "email", "recipients": ["ops@example.com"]},
        }
    ).stored(
        request_id=f"fz-{suffix}", tenant=tenant, owner="fuzzer", version=1, created_at=now, updated_at=now
    )
    spec = job_for(request, now)
    pack = MeasurementPack(
        channel="fuzz",
        publisher=f"dev-{suffix}",
        base_unit="Cel",
        records=[MeasurementRecord(name="temp", time=now.timestamp(), value=21.5)],
    )
    thing = Thing(id=f"dev-{suffix}", version=1, serial_number=f"SN-{suffix}")
    entity = Entity(entity_type="Customer", id=f"c-{suffix}", version=1, document={"name": "Ada"})
    completed = ExportCompletedData(job_id=spec.job_id, request_id=request.id, status=JobStatus.FAILED)
    grant = GrantChangedData(
        grant_id=f"g-{suffix}",
        tenant=tenant,
        subjects=["user:bob"],
        actions=["exporter:exports:read"],
        version=1,
    )
    common = {"id": f"fz-{suffix}", "source": "fuzzer", "tenant": tenant}
    return {
        Topic.MEASUREMENTS: MeasurementsPublished(**common, data=pack).to_wire(),
        Topic.THINGS: ThingUpdated(**common, data=thing).to_wire(),
        Topic.ENTITIES: EntityUpdated(**common, data=entity).to_wire(),
        Topic.EXPORT_REQUESTED: ExportRequested(**common, data=spec).to_wire(),
        Topic.EXPORT_COMPLETED: ExportCompleted(**common, data=completed).to_wire(),
        Topic.IAM_POLICY_UPDATED: GrantChanged(**common, data=grant).to_wire(),
    }


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value, the root excluded."""
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    found = []
    for name, child in children:
        found.append((*prefix, name))
        found.extend(_paths(child, (*prefix, name)))
    return found


def _mutate_json(event: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str]:
    mutated = copy.deepcopy(event)
    path = rng.choice(_paths(mutated))
    parent: Any = mutated
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    choice = rng.randrange(4)
    if choice == 0 and isinstance(parent, dict):
        del parent[last]
        return mutated, f"removed {'.'.join(map(str, path))}"
    if choice == 1 and isinstance(parent, dict):
        parent[f"unknown{rng.randrange(100)}"] = rng.choice(HOSTILE)
        return mutated, f"unknown field beside {'.'.join(map(str, path))}"
    value = rng.choice(HOSTILE)
    parent[last] = value
    return mutated, f"{'.'.join(map(str, path))} = {str(value)[:40]!r}"


def _raw(rng: random.Random) -> tuple[bytes | None, str]:
    kind = rng.randrange(7)
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 512))), "random bytes"
    if kind == 1:
        return b"", "empty value"
    if kind == 2:
        return None, "no value (a tombstone)"
    if kind == 3:
        depth = rng.choice([100, 1_000, 100_000])
        return b"[" * depth + b"]" * depth, f"arrays nested {depth} deep"
    if kind == 4:
        return b'{"id": "\xff\xfe", "data": {}}', "invalid UTF-8 inside JSON"
    if kind == 5:
        return json.dumps(rng.choice(HOSTILE)).encode(), "a bare JSON value"
    return b'{"id": "1", "data": ' + b'"' + b"y" * 900_000 + b'"}', "a 900 kB field"


def _headers(rng: random.Random) -> tuple[Headers, str]:
    kind = rng.randrange(4)
    if kind == 0:
        return [("x-tenant", b"\xff\xfe")], "x-tenant not UTF-8"
    if kind == 1:
        return [("x-tenant", b"t" * 500)], "x-tenant 500 characters"
    if kind == 2:
        return [("x-tenant", b"another-tenant")], "x-tenant of another tenant"
    return [("content-type", b"text/plain"), ("x-dlq-reason", b"forged")], "forged headers"


def fuzz_records(
    topic: Topic, count: int, rng: random.Random, tenant: str, signer: Producer
) -> list[FuzzRecord]:
    """``count`` hostile records for ``topic``: about half mutated events, a quarter raw bytes or
    broken JSON, a quarter valid events with hostile headers; four in five signed by ``signer``
    (after the mutation, so they get past the signature check to the decoders)."""
    return [_signed(record, rng, signer) for record in _hostile(topic, count, rng, tenant)]


def _signed(record: FuzzRecord, rng: random.Random, signer: Producer) -> FuzzRecord:
    if record.value is None or rng.random() < 0.2:
        return record
    headers = [*record.headers, *signer.raw_headers(record.topic.value, record.value)]
    return dataclasses.replace(record, headers=headers)


def _hostile(topic: Topic, count: int, rng: random.Random, tenant: str) -> list[FuzzRecord]:
    records = []
    for _ in range(count):
        event = _base_events(tenant, rng)[topic]
        key = rng.choice([None, b"", uuid.uuid4().hex.encode(), b"\xff" * 300])
        roll = rng.random()
        if roll < 0.5:
            mutated, how = _mutate_json(event, rng)
            value: bytes | None = json.dumps(mutated).encode()
            records.append(FuzzRecord(topic, value, key, [], how))
        elif roll < 0.75:
            value, how = _raw(rng)
            # Kafka takes no record without both: a tombstone has a key.
            records.append(FuzzRecord(topic, value, key if value is not None else b"tombstone", [], how))
        else:
            headers, how = _headers(rng)
            records.append(FuzzRecord(topic, json.dumps(event).encode(), key, headers, how))
    return records


_POLICY_EVENT: TypeAdapter[Any] = TypeAdapter(PolicyStreamEvent)
_ENVELOPES: dict[Topic, Callable[[bytes], object]] = {
    Topic.EXPORT_REQUESTED: ExportRequested.model_validate_json,
    Topic.EXPORT_COMPLETED: ExportCompleted.model_validate_json,
    Topic.IAM_POLICY_UPDATED: _POLICY_EVENT.validate_json,
}


def refusal(record: FuzzRecord, settings: Settings) -> str | None:
    """Why the topic's consumer must refuse ``record`` (so dead-letter it), or None to accept it."""
    limits = Limits.from_settings(settings.ingestor)
    try:
        Verifier.from_settings(settings.kafka).check(record.topic.value, record.value, record.headers)
    except Refused as error:
        return str(error)
    if record.topic in _ENVELOPES:
        try:
            _ENVELOPES[record.topic](record.value or b"")
        except ValidationError as error:
            return str(error).splitlines()[0]
        return None
    headers = list(record.headers)
    decoders: dict[Topic, Callable[[], object]] = {
        Topic.MEASUREMENTS: lambda: decode_measurements(
            record.value, headers, limits, datetime.now(UTC) - timedelta(seconds=60)
        ),
        Topic.THINGS: lambda: decode_thing(record.value, headers, limits),
        Topic.ENTITIES: lambda: decode_entity(record.value, headers, limits),
    }
    try:
        decoders[record.topic]()
    except Rejected as error:
        return str(error)
    return None


def base_event(topic: Topic, tenant: str, seed: int) -> dict[str, Any]:
    """A valid event of ``topic``, for the sentinels that prove a consumer still works."""
    return _base_events(tenant, random.Random(seed))[topic]

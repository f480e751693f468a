"""The ingest rules without servers: decoding, SenML resolution, refusals and the batch use case."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from exporter.adapters.mongo.ingested import readings_frame
from exporter.adapters.mongo.segments import position
from exporter.contracts.events import MeasurementsPublished
from exporter.contracts.ingest import Measurement, MeasurementPack, to_milliseconds
from exporter.topics import Topic
from ingestor.batches import Lane, SourceRecord, ingest_batch
from ingestor.decoding import Limits, Rejected, decode_entity, decode_measurements, decode_thing
from ingestor.readings import Readings

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW_S = NOW.timestamp()
LIMITS = Limits(max_message_bytes=10_000, max_future_skew=timedelta(minutes=5))
TENANT = [("x-tenant", b"acme")]


def raw(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def record(**fields: Any) -> dict[str, Any]:
    return {"channel": "ch", "publisher": "dev", "name": "temp", "time": NOW_S, "value": 1.0} | fields


def measurements(payload: Any, headers: list[tuple[str, bytes]] = TENANT) -> list[Measurement]:
    return decode_measurements(payload if isinstance(payload, bytes) else raw(payload), headers, LIMITS, NOW)


def refusal(payload: Any, headers: list[tuple[str, bytes]] = TENANT) -> str:
    with pytest.raises(Rejected) as refused:
        measurements(payload, headers)
    return str(refused.value)


def test_a_pack_applies_its_base_name_time_and_unit_and_records_override_them() -> None:
    pack = {
        "channel": "ch",
        "subtopic": "events.data",
        "publisher": "dev",
        "baseName": "urn:dev:",
        "baseTime": NOW_S - 60,
        "baseUnit": "Cel",
        "records": [
            {"name": "temp", "time": 0, "value": 20.5},
            {"name": "temp", "time": 30.25, "value": 21},
            {"name": "hum", "unit": "%RH", "subtopic": "", "publisher": "other", "boolValue": True},
        ],
    }
    [first, second, third] = measurements(pack)
    assert first == Measurement(
        "acme", "ch", "events.data", "dev", "", "urn:dev:temp", "Cel", int(NOW_S - 60) * 1000, "value", 20.5
    )
    assert (second.time_ms, second.value) == (int(NOW_S - 30) * 1000 + 250, 21)
    assert (third.name, third.unit, third.subtopic, third.publisher) == ("urn:dev:hum", "%RH", "", "other")
    assert (third.time_ms, third.kind, third.value) == (int(NOW_S - 60) * 1000, "boolValue", True)


def test_a_single_record_an_array_and_an_envelope_are_packs_too() -> None:
    assert [m.name for m in measurements(record())] == ["temp"]
    assert [m.name for m in measurements([record(name="a"), record(name="b")])] == ["a", "b"]
    envelope = MeasurementsPublished(
        id="e1", source="s", tenant="globex", data=MeasurementPack.model_validate({"records": [record()]})
    )
    [stored] = measurements(envelope.to_wire(), headers=[])
    assert stored.tenant == "globex"


@pytest.mark.parametrize(
    ("time", "milliseconds"),
    [
        (1_767_225_600, 1_767_225_600_000),  # seconds
        (1_767_225_600.1234, 1_767_225_600_123),  # seconds, to the millisecond
        (1_767_225_600_000, 1_767_225_600_000),  # milliseconds
        (99_999_999_999, 99_999_999_999_000),  # the last second read as seconds (year 5138)
        (100_000_000_000, 100_000_000_000),  # the first read as milliseconds (1973-03-03)
        (0, 0),
    ],
)
def test_time_is_seconds_or_milliseconds_by_magnitude(time: float, milliseconds: int) -> None:
    assert to_milliseconds(time) == milliseconds


@pytest.mark.parametrize("kind", ["value", "stringValue", "boolValue", "dataValue", "sum"])
def test_each_value_kind_is_kept_with_its_name(kind: str) -> None:
    value = {"value": 2.5, "stringValue": "on", "boolValue": False, "dataValue": "AQI=", "sum": 7}[kind]
    payload = {k: v for k, v in record().items() if k != "value"} | {kind: value}
    [stored] = measurements(payload)
    assert (stored.kind, stored.value) == (kind, value)


BAD_MEASUREMENTS: list[tuple[bytes, str]] = [
    (b"", "message is empty"),
    (b"{oops", "message is not valid JSON"),
    (b'"just a string"', "records.0: Input should be a valid dictionary"),
    (raw({"records": []}), "records: List should have at least 1 item"),
    (raw(record(value="21.5")), "records.0.value: Input should be a valid number"),
    (raw(record(value=True)), "records.0.value: Input should be a valid number"),
    (raw(record(time="2026-03-01")), "records.0.time: Input should be a valid number"),
    (raw(record(channel=7)), "records.0.channel: Input should be a valid string"),
    (raw(record(unknown=1)), "records.0.unknown: Extra inputs are not permitted"),
    (
        b'{"channel":"c","publisher":"p","name":"n","time":1,"value":NaN}',
        "records.0.value: Input should be a finite number",
    ),
    (
        b'{"channel":"c","publisher":"p","name":"n","time":1,"sum":-Infinity}',
        "records.0.sum: Input should be a finite number",
    ),
    (
        raw(record(value=None)),
        "exactly one of value, stringValue, boolValue, dataValue, sum must be set; found none",
    ),
    (raw(record(sum=1)), "found value, sum"),
    (raw(record(time=None)), "records.0.time: required (here or as the pack's baseTime)"),
    (raw(record(time=-1)), "records.0.time: -1.0 is not a Unix time"),
    (raw(record(channel=None)), "records.0.channel: required (here or on the pack)"),
    (raw(record(publisher=None)), "records.0.publisher: required (here or on the pack)"),
    (raw(record(name=None)), "records.0.name: baseName and name together must have 1 to 200 characters"),
    (
        raw({"baseName": "x" * 150, "records": [record(name="y" * 60)]}),
        "records.0.name: baseName and name",
    ),
    (raw(record(time=NOW_S + 301)), "records.0.time: "),
    (raw(record(time=(NOW_S + 301) * 1000)), "too far in the future"),
    (raw(record(pad="x" * 10_000)), "bytes, more than the 10000 allowed"),
    (raw([]), "records: List should have at least 1 item"),
    (
        raw({"channel": "c", "publisher": "p", "records": [{"name": "n", "time": 1, "value": None}]}),
        "records.0: Value error, exactly one of value, stringValue, boolValue, dataValue, sum must be set",
    ),
    (
        raw({"channel": "c", "records": [{"name": "n", "time": 1, "value": 1}]}),
        "records.0.publisher: required",
    ),
    (
        raw({"records": [record()], "baseUnit": "u" * 51}),
        "baseUnit: String should have at most 50 characters",
    ),
    (raw([record(), record(time=NOW_S + 400)]), "records.1.time: "),
    (raw([record(), record(channel="")]), "records.1.channel: String should have at least 1 character"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD_MEASUREMENTS)
def test_bad_measurements_are_refused_naming_the_field(payload: bytes, reason: str) -> None:
    assert reason in refusal(payload)


@pytest.mark.parametrize(("payload", "reason"), BAD_MEASUREMENTS)
def test_the_column_path_refuses_with_the_same_reasons(payload: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        Readings().add(Record(payload, 7), LIMITS, NOW)
    assert str(refused.value) == refusal(payload)


GOOD_MEASUREMENTS: list[Any] = [
    {
        "channel": "ch",
        "subtopic": "events",
        "publisher": "dev",
        "protocol": "mqtt",
        "baseName": "urn:",
        "baseTime": NOW_S - 60,
        "baseUnit": "Cel",
        "records": [
            {"name": "temp", "time": 0.0005, "value": 20.5},
            {"name": "temp", "time": 30.25, "value": 21, "unit": "K", "protocol": "http"},
            {"name": "hum", "subtopic": "", "publisher": "other", "channel": "c2", "boolValue": True},
            {"name": "s", "stringValue": "on"},
            {"name": "d", "dataValue": "AQI="},
            {"sum": 7},
        ],
    },
    [record(name="a"), record(name="b", time=(NOW_S - 1) * 1000, value=-0.5)],
    # Plain records (a name, a time and a number), one with a null beside its sum.
    {
        "channel": "ch",
        "publisher": "dev",
        "baseName": "x.",
        "baseTime": NOW_S - 5,
        "records": [{"name": "a", "time": 1, "value": 2}, {"time": 2.5, "value": 3.5}],
    },
    {
        "channel": "ch",
        "publisher": "dev",
        "baseTime": NOW_S,
        "records": [{"name": "s", "value": None, "sum": 1}],
    },
    # Fields some records carry and the pack does not, and texts that spell field names.
    {"records": [record(name="channel"), record(subtopic="sub", unit="sum", protocol="p")]},
    {
        "publisher": "p",
        "records": [record(publisher=None, stringValue="sum", value=None), record(name="unit")],
    },
    b'{"channel":"c","publisher":"p","time":1,"value":1,"n\\u0061me":"escaped"}',
    record(),
    {"records": [record()], "base_name": "snake case is the slower path's"},
    MeasurementsPublished(
        id="e1", source="s", tenant="globex", data=MeasurementPack.model_validate({"records": [record()]})
    ).to_wire(),
]


def test_the_column_path_stores_what_the_model_path_resolves() -> None:
    readings, expected = Readings(), []
    for offset, payload in enumerate(GOOD_MEASUREMENTS):
        value = payload if isinstance(payload, bytes) else raw(payload)
        headers = [] if b'"data"' in value else TENANT
        readings.add(Record(value, offset, partition=3, headers=headers), LIMITS, NOW)
        decoded = decode_measurements(value, headers, LIMITS, NOW)
        positions = [position(offset, index) for index in range(len(decoded))]
        expected.append(readings_frame(decoded, positions, 3))
    assert readings.count == sum(frame.height for frame in expected) == 19
    assert readings.frame().sort("position").equals(pl.concat(expected).sort("position"))


def test_a_time_just_inside_the_allowed_skew_is_accepted() -> None:
    [stored] = measurements(record(time=NOW_S + 300))
    assert stored.time_ms == int(NOW_S + 300) * 1000


def test_the_tenant_is_required_and_must_agree() -> None:
    assert refusal(record(), headers=[]) == "tenant: required, as the x-tenant header or in an envelope"
    assert "x-tenant header is not a tenant name" in refusal(record(), headers=[("x-tenant", b"")])
    assert "x-tenant header is not a tenant name" in refusal(record(), headers=[("x-tenant", b"\xff")])
    envelope = {"id": "e1", "source": "s", "tenant": "globex", "data": {"records": [record()]}}
    assert "differs from the envelope's tenant 'globex'" in refusal(envelope)
    assert "data.records.0.value" in refusal(
        envelope | {"data": {"records": [record(value="x")]}}, headers=[]
    )
    wrong_type = envelope | {"type": "exporter.export.requested.v1"}
    assert "type: Input should be 'exporter.measurements.v1'" in refusal(wrong_type, headers=[])


def thing(**fields: Any) -> dict[str, Any]:
    return {"id": "boiler-1", "version": 3, "serialNumber": "SN-1", "customerId": "c1"} | fields


def test_a_thing_carries_its_metadata() -> None:
    payload = thing(thingDefinition={"name": "Boiler"}, metrics=[{"name": "temp", "unit": "Cel"}])
    [(tenant, decoded)] = decode_thing(raw(payload), TENANT, LIMITS)
    assert tenant == "acme"
    assert (decoded.serial_number, decoded.customer_id, decoded.location_id) == ("SN-1", "c1", None)
    assert decoded.thing_definition is not None
    assert decoded.thing_definition.name == "Boiler"
    assert [(m.name, m.unit) for m in decoded.metrics] == [("temp", "Cel")]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (thing(version=None), "version: Input should be a valid integer"),
        (thing(version=-1), "version: Input should be greater than or equal to 0"),
        (thing(version=1.5), "version: Input should be a valid integer"),
        (thing(id=""), "id: String should have at least 1 character"),
        (thing(metrics=[{"name": "t"}, {"name": "t"}]), "metrics: Value error, metric names must be unique"),
        (thing(thingDefinition={"id": "td"}), "thingDefinition.name: Field required"),
    ],
)
def test_bad_things_are_refused(payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        decode_thing(raw(payload), TENANT, LIMITS)


def entity(**fields: Any) -> dict[str, Any]:
    return {
        "entityType": "Reservation",
        "id": "r1",
        "version": 1,
        "document": {"state": "Confirmed"},
    } | fields


def test_an_entity_of_any_type_keeps_its_document() -> None:
    document = {"state": "Confirmed", "nights": 2, "guest": {"name": "Ada", "tags": ["vip", None]}}
    [(tenant, decoded)] = decode_entity(
        raw(entity(entityType="OrderItem", document=document)), TENANT, LIMITS
    )
    assert (tenant, decoded.entity_type, decoded.document) == ("acme", "OrderItem", document)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (raw(entity(entityType="1Bad")), "entityType: String should match pattern"),
        (raw(entity(document=[1])), "document: Input should be a valid dictionary"),
        (raw(entity(document={"$set": 1})), "field name document.'\\$set' must not start with"),
        (raw(entity(document={"a": [{"$x": 1}]})), "field name document.a.0.'\\$x'"),
        (
            b'{"entityType":"A","id":"1","version":1,"document":{"a":{"b":NaN}}}',
            "document.a.dict.b.float: Input should be a finite number",
        ),
        (raw({k: v for k, v in entity().items() if k != "document"}), "document: Field required"),
    ],
)
def test_bad_entities_are_refused(payload: bytes, reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        decode_entity(payload, TENANT, LIMITS)


@dataclass
class Record:
    value: bytes | None
    offset: int
    topic: str = Topic.MEASUREMENTS.value
    partition: int = 0
    key: bytes | None = b"k"
    headers: list[tuple[str, bytes]] = field(default_factory=lambda: list(TENANT))


@dataclass
class Outcome:
    failures: dict[int, str] = field(default_factory=dict)


class Store:
    """Records what it is given; refuses the items named in ``refuse`` or fails outright."""

    def __init__(self, refuse: frozenset[str] = frozenset(), broken: bool = False) -> None:
        self.items: list[Measurement] = []
        self.refuse = refuse
        self.broken = broken

    async def __call__(self, items: list[Measurement]) -> Outcome:
        if self.broken:
            raise ConnectionError("store unreachable")
        self.items += items
        return Outcome(
            {i: "the store refused it" for i, item in enumerate(items) if item.name in self.refuse}
        )


class Letters:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def __call__(self, source: SourceRecord, reason: str) -> None:
        self.sent.append((source.offset, reason))


def lane(store: Store) -> Lane[Measurement]:
    return Lane(
        Topic.MEASUREMENTS, lambda value, headers: decode_measurements(value, headers, LIMITS, NOW), store
    )


async def test_a_batch_stores_the_good_records_and_dead_letters_the_bad_ones() -> None:
    batch = [
        Record(raw(record(name="a")), 10),
        Record(b"{oops", 11),
        Record(raw([record(name="b"), record(name="c")]), 12),
        Record(raw(record(name="d")), 13, headers=[]),
        Record(raw(record(name="refused")), 14),
        Record(raw(record(name="e")), 15),
    ]
    store, letters = Store(refuse=frozenset({"refused"})), Letters()
    report = await ingest_batch(lane(store), batch, letters)
    assert [item.name for item in store.items] == ["a", "b", "c", "refused", "e"]
    assert [offset for offset, _ in letters.sent] == [11, 13, 14]
    assert letters.sent[2][1] == "the store refused it"
    assert (report.records, report.items, report.dead_lettered) == (6, 5, 3)


async def test_a_record_the_decoder_trips_on_is_dead_lettered_not_retried_forever() -> None:
    def decode(value: bytes | None, headers: Any) -> list[Measurement]:
        if value == b"trips":
            raise KeyError("a bug")
        return decode_measurements(value, headers, LIMITS, NOW)

    store, letters = Store(), Letters()
    await ingest_batch(
        Lane(Topic.MEASUREMENTS, decode, store), [Record(b"trips", 1), Record(raw(record()), 2)], letters
    )
    assert letters.sent == [(1, "could not be decoded: KeyError: 'a bug'")]
    assert [item.name for item in store.items] == ["temp"]


async def test_a_batch_the_store_cannot_take_fails_whole_and_dead_letters_nothing() -> None:
    letters = Letters()
    with pytest.raises(ConnectionError):
        await ingest_batch(lane(Store(broken=True)), [Record(raw(record()), 1), Record(b"{", 2)], letters)
    assert letters.sent == []

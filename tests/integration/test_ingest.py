"""The ingestor against the real broker and store: what upstream publishes is stored once, bad
records are dead-lettered without stopping anything, and a crash loses nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from aiokafka import AIOKafkaProducer, TopicPartition
from faststream.kafka import KafkaBroker
from pydantic import JsonValue
from pymongo.errors import ConnectionFailure

from exporter.adapters.kafka import client_options, make_broker, publish_dead_letter
from exporter.adapters.mongo.client import ENTITIES, MEASUREMENTS, THINGS
from exporter.adapters.mongo.entities import EntityRepository
from exporter.adapters.mongo.measurements import Added, MeasurementRepository
from exporter.adapters.mongo.segments import (
    MAX_BYTES,
    SPAN_MS,
    Segment,
    bucket_of,
    first_arrived,
    frame_of,
    from_document,
)
from exporter.adapters.mongo.things import ThingRepository
from exporter.contracts.ingest import Entity
from exporter.contracts.thing_filters import ThingFilters
from exporter.local.demo import demo_measurements
from exporter.runtime import Runtime
from exporter.settings import Settings
from exporter.signing import TENANT_HEADER
from exporter.topics import Topic
from ingestor.app import lanes, measurement_flusher, subscribe, subscribe_measurements
from ingestor.batches import SourceRecord
from ingestor.flushing import Flusher
from tests.integration.test_messaging import read_topic

DAY_AGO = datetime.now(UTC) - timedelta(days=1)
T0 = int(DAY_AGO.timestamp())  # a whole second, in seconds


def new_tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def send(
    settings: Settings, topic: Topic, key: str, messages: Sequence[tuple[Any, str | None]]
) -> None:
    """Publishes like an upstream system: each (payload, tenant header) in order, one key so one partition.

    A payload that is ``bytes`` goes as is; anything else as JSON.
    """
    producer = AIOKafkaProducer(**client_options(settings.kafka))
    await producer.start()
    try:
        for payload, tenant in messages:
            value = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            headers = [(TENANT_HEADER, tenant.encode())] if tenant is not None else []
            await producer.send_and_wait(topic.value, value, key=key.encode(), headers=headers)
    finally:
        await producer.stop()


@asynccontextmanager
async def ingestor(
    runtime: Runtime, topic: Topic, repository: MeasurementRepository | None = None, **overrides: Any
) -> AsyncIterator[KafkaBroker]:
    """The ingestor's consumer of ``topic`` (in a consumer group of its own unless ``group_id``
    is given) while the block runs; measurements go to ``repository`` when given."""
    settings = runtime.settings.ingestor.model_copy(
        update={"group_id": f"test-{uuid.uuid4().hex}", "flush_seconds": 0.2, **overrides}
    )
    broker = make_broker(runtime.settings)
    flusher = None
    if topic is Topic.MEASUREMENTS:
        flusher = measurement_flusher(broker, repository or MeasurementRepository(runtime.db), settings)
        subscribe_measurements(broker, flusher, settings)
    else:
        subscribe(broker, next(lane for lane in lanes(runtime, settings) if lane.topic is topic), settings)
    async with broker:
        await broker.start()
        try:
            yield broker
        finally:
            if flusher is not None:
                await flusher.close()


async def stored(runtime: Runtime, collection: str, query: Mapping[str, Any], expected: int) -> int:
    """How many documents match (readings, in ``MEASUREMENTS``) once ``expected`` are there (or
    after 30 s, for the assertion to show)."""
    count = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        count = await (readings if collection == MEASUREMENTS else documents)(runtime, collection, query)
        if count >= expected:
            break
        await asyncio.sleep(0.2)
    return count


async def documents(runtime: Runtime, collection: str, query: Mapping[str, Any]) -> int:
    return await runtime.db[collection].count_documents(query)


async def readings(runtime: Runtime, collection: str, query: Mapping[str, Any]) -> int:
    """The readings the segments matching ``query`` hold."""
    return sum([d["count"] async for d in runtime.db[collection].find(query, {"count": 1})])


async def segments(runtime: Runtime, query: Mapping[str, Any]) -> list[Segment]:
    return [from_document(d) async for d in runtime.db[MEASUREMENTS].find(query)]


async def exported(runtime: Runtime, query: Mapping[str, Any]) -> pl.DataFrame:
    """The readings of the segments matching ``query`` as the reader gives them: first arrived."""
    return first_arrived(frame_of(await segments(runtime, query)))


def record(tenant: str, **fields: Any) -> dict[str, Any]:
    """A single record of the given tenant's test device; ``fields`` add to or replace the defaults."""
    return {
        "channel": "ch-1",
        "publisher": f"dev-{tenant}",
        "name": "temp",
        "time": T0,
        "value": 1.0,
    } | fields


async def test_packs_and_single_records_are_stored_with_their_base_values(runtime: Runtime) -> None:
    tenant = new_tenant()
    device = f"dev-{tenant}"
    pack = {
        "channel": "ch-1",
        "subtopic": "events.data",
        "publisher": device,
        "protocol": "mqtt",
        "baseName": "urn:dev:",
        "baseTime": T0 * 1000,  # milliseconds: the offsets below are milliseconds too
        "baseUnit": "Cel",
        "records": [
            {"name": "temp", "time": 0, "value": 20.5},
            {"name": "temp", "time": 60_000, "value": 21},
            {"name": "hum", "time": 0, "value": 40, "unit": "%RH"},
        ],
    }
    array = [record(tenant, name="urn:dev:temp", time=T0 + 120.5, value=22.0, subtopic="events.data")]
    envelope = demo_measurements(tenant).to_wire()  # 90 records of another device
    await send(
        runtime.settings,
        Topic.MEASUREMENTS,
        device,
        [(pack, tenant), (record(tenant, name="single"), tenant), (array, tenant), (envelope, None)],
    )
    async with ingestor(runtime, Topic.MEASUREMENTS):
        assert await stored(runtime, MEASUREMENTS, {"tenant": tenant}, 95) == 95

    temperature = {"tenant": tenant, "publisher": device, "name": "urn:dev:temp", "subtopic": "events.data"}
    rows = (await exported(runtime, temperature)).iter_rows(named=True)
    assert [(row["time"], row["value"], row["unit"]) for row in rows] == [
        (datetime.fromtimestamp(T0, UTC), 20.5, "Cel"),
        (datetime.fromtimestamp(T0 + 60, UTC), 21.0, "Cel"),
        (datetime.fromtimestamp(T0 + 120.5, UTC), 22.0, ""),
    ]
    humidity = await runtime.db[MEASUREMENTS].find_one({"tenant": tenant, "name": "urn:dev:hum"})
    assert humidity is not None
    assert (humidity["unit"], humidity["protocol"], from_document(humidity).values[0]) == ("%RH", "mqtt", 40)
    single = await runtime.db[MEASUREMENTS].find_one({"tenant": tenant, "name": "single"})
    assert single is not None
    assert (single["subtopic"], single["unit"], single["protocol"]) == ("", "", "")


async def test_every_value_kind_is_stored_as_sent(runtime: Runtime) -> None:
    tenant = new_tenant()
    kinds = {"value": 1.5, "stringValue": "open", "boolValue": True, "dataValue": "AQID", "sum": 42.0}
    messages = [
        (record(tenant, name=kind, value=None) | {kind: value}, tenant) for kind, value in kinds.items()
    ]
    await send(runtime.settings, Topic.MEASUREMENTS, tenant, messages)
    async with ingestor(runtime, Topic.MEASUREMENTS):
        assert await stored(runtime, MEASUREMENTS, {"tenant": tenant}, 5) == 5
    stored_kinds = {
        s.series.name: (s.tags.kind, s.values[0]) for s in await segments(runtime, {"tenant": tenant})
    }
    assert stored_kinds == {kind: (kind, value) for kind, value in kinds.items()}


def thing(thing_id: str, version: int, customer: str, serial: str) -> dict[str, Any]:
    return {
        "id": thing_id,
        "version": version,
        "serialNumber": serial,
        "thingDefinition": {"id": "td-1", "name": "Boiler"},
        "customerId": customer,
        "locationId": "loc-1",
        "productModelId": f"pm-{serial}",
        "productModelPartId": "boiler",
        "metrics": [{"name": "temp", "unit": "Cel"}],
    }


async def test_things_keep_their_newest_version(runtime: Runtime) -> None:
    tenant = new_tenant()
    envelope = {"id": "e1", "type": "exporter.thing.updated.v1", "source": "crm", "tenant": tenant}
    updates = [
        (thing("boiler-1", 2, "cust-a", "SN-2"), tenant),
        (thing("boiler-1", 1, "cust-b", "SN-1"), tenant),  # stale: arrives after version 2
        (envelope | {"data": thing("boiler-2", 5, "cust-a", "SN-9")}, None),
        (thing("boiler-2", 6, "cust-c", "SN-10"), tenant),
        (thing("sentinel", 1, "cust-z", "SN-0"), tenant),  # last on the partition: all before it are done
    ]
    await send(runtime.settings, Topic.THINGS, tenant, updates)
    async with ingestor(runtime, Topic.THINGS):
        assert await stored(runtime, THINGS, {"tenant": tenant, "id": "sentinel"}, 1) == 1

    things = ThingRepository(runtime.db)
    boiler = await things.get(tenant, "boiler-1")
    assert boiler is not None
    assert (boiler.version, boiler.serial_number, boiler.customer_id) == (2, "SN-2", "cust-a")
    assert (boiler.product_model_id, boiler.product_model_part_id) == ("pm-SN-2", "boiler")
    assert boiler.thing_definition is not None
    assert boiler.thing_definition.name == "Boiler"
    assert [t.id for t in await things.find(tenant, ThingFilters(customer_id="cust-a"))] == ["boiler-1"]
    by_customer_and_location = ThingFilters(customer_id="cust-c", location_id="loc-1")
    assert [t.id for t in await things.find(tenant, by_customer_and_location)] == ["boiler-2"]
    by_model = ThingFilters(product_model_id="pm-SN-10", product_model_part_id="boiler")
    assert [t.id for t in await things.find(tenant, by_model)] == ["boiler-2"]
    assert [t.id for t in await things.find(tenant, ThingFilters(product_model_id="pm-SN-9"))] == []
    assert await things.find(tenant, ThingFilters(thing_definition_id="td-2")) == []
    assert [t.id for t in await things.find(tenant, ThingFilters(thing_id="boiler-1"))] == ["boiler-1"]
    assert await things.get(new_tenant(), "boiler-1") is None


async def test_entities_keep_their_newest_version_whatever_the_arrival_order(runtime: Runtime) -> None:
    tenant = new_tenant()

    def entity(entity_type: str, entity_id: str, version: int, **document: Any) -> tuple[Any, str]:
        return {"entityType": entity_type, "id": entity_id, "version": version, "document": document}, tenant

    updates = [
        entity("Reservation", "r1", 3, state="Confirmed", nights=2),
        entity("Reservation", "r1", 1, state="Optional"),  # stale
        entity("Reservation", "r1", 3, state="Replayed"),  # same version: changes nothing
        entity("Customer", "r1", 1, name="Ada"),  # same id, other type: another entity
        entity("OrderItem", "o1", 1, amount={"value": 9.5, "currency": "EUR"}),
        entity("OrderItem", "o1", 2, amount={"value": 11.0, "currency": "EUR"}),
    ]
    await send(runtime.settings, Topic.ENTITIES, tenant, updates)
    # Delivered twice, the second time in reverse: versions still decide, not arrival order.
    await send(runtime.settings, Topic.ENTITIES, tenant, [*reversed(updates), entity("Sentinel", "s", 1)])
    async with ingestor(runtime, Topic.ENTITIES):
        assert await stored(runtime, ENTITIES, {"tenant": tenant, "entityType": "Sentinel"}, 1) == 1

    entities = EntityRepository(runtime.db)
    reservation = await entities.get(tenant, "Reservation", "r1")
    assert reservation is not None
    assert (reservation.version, reservation.document) == (3, {"state": "Confirmed", "nights": 2})
    customer = await entities.get(tenant, "Customer", "r1")
    assert customer is not None
    assert customer.document == {"name": "Ada"}
    items = [e async for e in entities.of_type(tenant, "OrderItem")]
    assert [(e.id, e.version, e.document["amount"]) for e in items] == [
        ("o1", 2, {"value": 11.0, "currency": "EUR"})
    ]


async def test_concurrent_first_writes_of_an_entity_keep_the_newest(runtime: Runtime) -> None:
    """Two writers both find no document and both insert: the one refused retries on the version."""
    tenant = new_tenant()
    entities = EntityRepository(runtime.db)

    def update(entity_id: str, version: int) -> list[tuple[str, Entity]]:
        document: dict[str, JsonValue] = {"v": version}
        return [(tenant, Entity(entity_type="Bill", id=entity_id, version=version, document=document))]

    ids = [f"b{i}" for i in range(10)]
    for entity_id in ids:
        # The newer one first in half the cases, second in the other half.
        first, second = (2, 1) if entity_id[-1] in "02468" else (1, 2)
        await asyncio.gather(
            entities.upsert_many(update(entity_id, first)), entities.upsert_many(update(entity_id, second))
        )
    stored_versions = [(e.id, e.version, e.document) async for e in entities.of_type(tenant, "Bill")]
    assert stored_versions == [(entity_id, 2, {"v": 2}) for entity_id in ids]


async def test_poison_in_the_middle_of_a_batch_is_dead_lettered_and_the_rest_is_stored(
    runtime: Runtime,
) -> None:
    tenant = new_tenant()
    limit = runtime.settings.ingestor.max_message_bytes
    far_future = datetime.now(UTC).timestamp() + 86_400
    missing_publisher = {k: v for k, v in record(tenant).items() if k != "publisher"} | {"subtopic": tenant}
    # (payload, tenant header, expected reason); every payload names the tenant, to be found again.
    poison: list[tuple[Any, str | None, str]] = [
        (f"{{not json {tenant}".encode(), tenant, "message is not valid JSON"),
        (record(tenant, value="warm"), tenant, "records.0.value: Input should be a valid number"),
        (record(tenant, channel=None), tenant, "records.0.channel: required"),
        (missing_publisher, tenant, "records.0.publisher: required"),
        (record(tenant, time=far_future), tenant, "records.0.time: "),
        (record(tenant, time=True), tenant, "records.0.time: Input should be a valid number"),
        (record(tenant, extra=1), tenant, "records.0.extra: Extra inputs are not permitted"),
        (
            record(tenant, value=None, sum=float("inf")),
            tenant,
            "records.0.sum: Input should be a finite number",
        ),
        (record(tenant), None, "tenant: required"),
        (json.dumps(record(tenant, pad="x" * limit)).encode(), tenant, f"more than the {limit} allowed"),
    ]
    good = [(record(tenant, name=f"good-{i}"), tenant) for i in range(4)]
    batch = [good[0], good[1], *[(payload, header) for payload, header, _ in poison], good[2], good[3]]
    await send(runtime.settings, Topic.MEASUREMENTS, tenant, batch)
    async with ingestor(runtime, Topic.MEASUREMENTS):
        assert await stored(runtime, MEASUREMENTS, {"tenant": tenant}, 4) == 4
        # The consumer carries on after the poison: a later message is stored too.
        await send(runtime.settings, Topic.MEASUREMENTS, tenant, [(record(tenant, name="later"), tenant)])
        assert await stored(runtime, MEASUREMENTS, {"tenant": tenant}, 5) == 5

    dead = await read_topic(runtime.settings, Topic.MEASUREMENTS.dead_letter, len(poison), tenant)
    letters = {letter.value: letter for letter in dead}
    assert len(dead) == len(letters) == len(poison)
    for payload, header, reason in poison:
        letter = letters[payload if isinstance(payload, bytes) else json.dumps(payload).encode()]
        headers = {key: value.decode() for key, value in letter.headers}
        assert reason in headers["x-dlq-reason"]
        assert headers["x-dlq-source-topic"] == Topic.MEASUREMENTS.value
        assert headers["x-dlq-source-offset"].isdigit()
        assert headers.get(TENANT_HEADER) == header
        assert letter.key == tenant.encode()


async def test_a_replayed_batch_creates_no_duplicates(runtime: Runtime) -> None:
    tenant = new_tenant()
    pack = {
        "channel": "ch-1",
        "publisher": f"dev-{tenant}",
        "baseName": "temp",
        "baseTime": T0,
        "records": [{"time": second, "value": second} for second in range(50)],
    }
    await send(runtime.settings, Topic.MEASUREMENTS, tenant, [(pack, tenant)])
    async with ingestor(runtime, Topic.MEASUREMENTS):
        assert await stored(runtime, MEASUREMENTS, {"tenant": tenant}, 50) == 50
    first = {d["_id"]: d["arrived"] async for d in runtime.db[MEASUREMENTS].find({"tenant": tenant})}

    # The whole topic read again by a new consumer group (an offset reset): the pack comes again.
    sentinel = record(tenant, name="sentinel")
    await send(runtime.settings, Topic.MEASUREMENTS, tenant, [(sentinel, tenant)])
    async with ingestor(runtime, Topic.MEASUREMENTS):
        assert await stored(runtime, MEASUREMENTS, {"tenant": tenant, "name": "sentinel"}, 1) == 1

    assert await readings(runtime, MEASUREMENTS, {"tenant": tenant}) == 51
    again = {d["_id"]: d["arrived"] async for d in runtime.db[MEASUREMENTS].find({"tenant": tenant})}
    assert len(again) == 2
    assert {key: again[key] for key in first} == first  # the first write stands


class Dying(MeasurementRepository):
    """Stores like the real one, then hangs (the process dies) before its ``dies_after``-th flush
    with the tenant's readings is committed."""

    def __init__(self, runtime: Runtime, tenant: str, dies_after: int) -> None:
        super().__init__(runtime.db)
        self.tenant, self.dies_after, self.flushes = tenant, dies_after, 0
        self.hung = asyncio.Event()
        self.replayed = 0

    async def add(self, segments: Sequence[Segment]) -> Added:
        added = await super().add(segments)
        self.replayed += added.replayed
        if any(segment.series.tenant == self.tenant for segment in segments):
            self.flushes += 1
            if self.flushes == self.dies_after:
                self.hung.set()
                await asyncio.Event().wait()
        return added


async def test_a_restart_mid_stream_loses_nothing_and_stores_nothing_twice(runtime: Runtime) -> None:
    tenant = new_tenant()
    packs = [
        {
            "channel": "ch-1",
            "publisher": f"dev-{tenant}",
            "baseName": f"m{index % 4}",
            "baseTime": T0 + index // 4 * 10,
            "records": [{"time": second, "value": second} for second in range(10)],
        }
        for index in range(20)
    ]
    await send(runtime.settings, Topic.MEASUREMENTS, tenant, [(pack, tenant) for pack in packs])
    group = f"test-{uuid.uuid4().hex}"
    dying = Dying(runtime, tenant, dies_after=2)
    small = {"group_id": group, "batch_max_messages": 3, "flush_readings": 50}
    async with ingestor(runtime, Topic.MEASUREMENTS, dying, **small):
        await asyncio.wait_for(dying.hung.wait(), timeout=60)
    before = await readings(runtime, MEASUREMENTS, {"tenant": tenant})
    assert 0 < before < 200

    # Other flush boundaries after the restart: the replay starts where the last commit was.
    restarted = Dying(runtime, tenant, dies_after=0)
    async with ingestor(runtime, Topic.MEASUREMENTS, restarted, **small | {"flush_readings": 70}):
        assert await stored(runtime, MEASUREMENTS, {"tenant": tenant}, 200) == 200
    assert await readings(runtime, MEASUREMENTS, {"tenant": tenant}) == 200
    assert restarted.replayed > 0  # the flush stored but never committed came again


async def test_a_letter_too_large_for_the_broker_goes_without_its_bytes(runtime: Runtime) -> None:
    tenant = new_tenant()
    await send(runtime.settings, Topic.MEASUREMENTS, tenant, [(record(tenant, pad="x" * 1500), tenant)])
    [original] = await read_topic(runtime.settings, Topic.MEASUREMENTS.value, 1, tenant)
    reason = "y" * 1000
    small = KafkaBroker(runtime.settings.kafka.bootstrap_servers, max_request_size=2048)
    async with small:
        await publish_dead_letter(small, original, reason)

    letters = await read_topic(runtime.settings, Topic.MEASUREMENTS.dead_letter, 10**6, "")
    [letter] = [r for r in letters if (TENANT_HEADER, tenant.encode()) in r.headers]
    headers = {key: value.decode() for key, value in letter.headers}
    assert letter.value == b""
    assert headers["x-dlq-reason"].startswith(reason)
    assert f"the original {len(original.value)} bytes are too large" in headers["x-dlq-reason"]
    assert (headers["x-dlq-source-partition"], headers["x-dlq-source-offset"]) == (
        str(original.partition),
        str(original.offset),
    )


async def test_the_same_series_and_millisecond_twice_keeps_the_first(runtime: Runtime) -> None:
    tenant = new_tenant()
    twice = [record(tenant, value=1.0), record(tenant, value=2.0)]  # one flush
    await send(runtime.settings, Topic.MEASUREMENTS, tenant, [(twice, tenant)])
    async with ingestor(runtime, Topic.MEASUREMENTS):
        assert await stored(runtime, MEASUREMENTS, {"tenant": tenant}, 1) == 1
        await send(runtime.settings, Topic.MEASUREMENTS, tenant, [(record(tenant, value=3.0), tenant)])
        assert await stored(runtime, MEASUREMENTS, {"tenant": tenant}, 2) == 2  # a later flush
    assert await readings(runtime, MEASUREMENTS, {"tenant": tenant}) == 2
    assert (await exported(runtime, {"tenant": tenant}))["value"].to_list() == [1.0]


async def test_out_of_order_and_late_readings_land_in_the_segment_of_their_day(runtime: Runtime) -> None:
    tenant = new_tenant()
    noon = bucket_of(T0 * 1000) + SPAN_MS // 2
    seconds = [0, -3, 5, -86_400, 2, -86_399]  # out of order, and a day late
    pack = {
        "channel": "ch-1",
        "publisher": f"dev-{tenant}",
        "baseName": "temp",
        "baseTime": noon,
        "records": [{"time": second * 1000, "value": second} for second in seconds],
    }
    await send(runtime.settings, Topic.MEASUREMENTS, tenant, [(pack, tenant)])
    async with ingestor(runtime, Topic.MEASUREMENTS):
        assert await stored(runtime, MEASUREMENTS, {"tenant": tenant}, 6) == 6
    stored_segments = sorted(await segments(runtime, {"tenant": tenant}), key=lambda s: int(s.times[0]))
    assert [((s.times - noon) // 1000).tolist() for s in stored_segments] == [
        [-86_400, -86_399],
        [-3, 0, 2, 5],
    ]
    assert [s.values.tolist() for s in stored_segments] == [[-86_400, -86_399], [-3, 0, 2, 5]]  # type: ignore[union-attr]
    assert [bucket_of(int(s.times[-1])) for s in stored_segments] == [
        noon - SPAN_MS // 2 - SPAN_MS,
        noon - SPAN_MS // 2,
    ]


async def test_a_flush_beyond_the_document_limit_is_split(runtime: Runtime) -> None:
    tenant = new_tenant()
    text = "x" * 10_000
    packs = [
        [record(tenant, time=T0 + message * 100 + index, value=None, stringValue=text) for index in range(90)]
        for message in range(6)
    ]
    await send(runtime.settings, Topic.MEASUREMENTS, tenant, [(pack, tenant) for pack in packs])
    async with ingestor(runtime, Topic.MEASUREMENTS, flush_readings=540, flush_seconds=10):
        assert await stored(runtime, MEASUREMENTS, {"tenant": tenant}, 540) == 540
    pieces = await segments(runtime, {"tenant": tenant})
    # 5.4 MB of text of one series: in two pieces when it came as one flush (a loaded machine may
    # cut it into more flushes, and so more pieces), never one above the limit.
    assert len(pieces) >= 2
    assert sum(piece.count for piece in pieces) == 540
    assert all(sum(map(len, piece.values)) <= MAX_BYTES for piece in pieces)


class Outage(MeasurementRepository):
    """The store unreachable: every write fails as a lost connection would."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime.db)
        self.tries = 0

    async def add(self, segments: Sequence[Segment]) -> Added:
        self.tries += 1
        raise ConnectionFailure("store unreachable")


async def test_a_store_outage_commits_nothing_and_the_records_come_again(runtime: Runtime) -> None:
    tenant = new_tenant()
    await send(
        runtime.settings,
        Topic.MEASUREMENTS,
        tenant,
        [(record(tenant, name=f"m{i}"), tenant) for i in range(5)],
    )
    group = f"test-{uuid.uuid4().hex}"
    outage = Outage(runtime)
    async with ingestor(runtime, Topic.MEASUREMENTS, outage, group_id=group, retry_backoff_seconds=0.05):
        while outage.tries < 3:  # tried, and tried again
            await asyncio.sleep(0.05)
    assert await readings(runtime, MEASUREMENTS, {"tenant": tenant}) == 0
    async with ingestor(runtime, Topic.MEASUREMENTS, group_id=group):
        assert await stored(runtime, MEASUREMENTS, {"tenant": tenant}, 5) == 5


@dataclass
class Consumed:
    """A consumed record of one partition of the measurements topic."""

    value: bytes
    offset: int
    topic: str = Topic.MEASUREMENTS.value
    partition: int = 0
    key: bytes | None = b"k"
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Commits:
    """The consumer's side of a flush: what it was told to commit."""

    def __init__(self) -> None:
        self.offsets: list[int] = []

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(Topic.MEASUREMENTS.value, 0)}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.offsets += offsets.values()


async def test_replays_with_other_flush_boundaries_store_exactly_what_is_missing(runtime: Runtime) -> None:
    """Each pack holds ten seconds of one series; a restarted ingestor (a new ``Flusher``) reads
    from an older offset with other flush boundaries."""
    tenant = new_tenant()
    packs = [
        {
            "channel": "ch-1",
            "publisher": f"dev-{tenant}",
            "baseName": "temp",
            "baseTime": T0 + 10 * offset,
            "records": [{"time": second, "value": second} for second in range(10)],
        }
        for offset in range(20)
    ]
    header = [(TENANT_HEADER, tenant.encode())]
    records = [
        Consumed(json.dumps(pack).encode(), offset, headers=header) for offset, pack in enumerate(packs)
    ]
    repository = MeasurementRepository(runtime.db)
    settings = runtime.settings.ingestor.model_copy(update={"flush_readings": 10**6})

    async def letters(record: SourceRecord, reason: str) -> None:
        raise AssertionError(reason)

    async def flushes(*boundaries: tuple[int, int]) -> list[int]:
        """Flushes of ``records[start:end]`` by a new ingestor; how many readings each added."""
        flusher, commits, added = Flusher(repository, letters, settings), Commits(), []
        for start, end in boundaries:
            before = await readings(runtime, MEASUREMENTS, {"tenant": tenant})
            await flusher.take(records[start:end], commits)
            await flusher.flush()
            added.append(await readings(runtime, MEASUREMENTS, {"tenant": tenant}) - before)
        assert commits.offsets == [end for _, end in boundaries]
        await flusher.close()
        return added

    assert await flushes((0, 10)) == [100]
    assert await flushes((0, 15)) == [50]  # more than the stored flush
    assert await flushes((0, 5), (5, 20)) == [0, 50]  # fewer, then more
    assert await flushes((3, 8), (8, 12), (12, 20)) == [0, 0, 0]  # from inside a stored flush
    times = np.concatenate([s.times for s in await segments(runtime, {"tenant": tenant})])
    assert len(times) == len(np.unique(times)) == 200

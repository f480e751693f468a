"""Thing-level exports (seed 001) and entity exports (seed 003) through the real renderer, stores and
object store; and the request-api's one-export-in-flight rule for an entity type."""

from __future__ import annotations

import copy
import csv
import gzip
import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from exporter.contracts.ingest import Entity, Thing
from exporter.domain.job_life import JobStatus
from exporter.runtime import Runtime
from exporter.settings import Settings
from tests.integration.api_server import isolated, serving
from tests.integration.renderer_support import body, configure, job_spec, measurement, ms, render, store
from tests.request_cases import SEED_000

pytestmark = pytest.mark.servers
TENANT = "acme"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def thing(thing_id: str, serial: str, customer: str, location: str, definition: str = "td-1") -> Thing:
    return Thing.model_validate(
        {
            "id": thing_id,
            "version": 1,
            "serialNumber": serial,
            "name": f"Scale {serial}",
            "thingDefinition": {"id": definition, "name": "Scale"},
            "customerId": customer,
            "locationId": location,
            "productModelId": f"pm-{customer}",
            "productModelPartId": "scale",
            "metrics": [{"name": "weight", "unit": "kg"}, {"name": "temperature", "unit": "Cel"}],
        }
    )


@pytest.fixture
async def things(runtime: Runtime) -> list[Thing]:
    seeded = [
        thing("t-1", "SN-1", "c1", "l1"),
        thing("t-2", "SN-2", "c1", "l2"),
        thing("t-3", "SN-3", "c2", "l1", definition="td-2"),
    ]
    outcome = await runtime.things.upsert_many([(TENANT, t) for t in seeded])
    assert outcome.written == len(seeded)
    readings = []
    for index, item in enumerate(seeded):
        for minute in range(3):
            moment = START + timedelta(minutes=minute)
            readings.append(measurement(TENANT, "weight", moment, 10.0 * (index + 1) + minute, "kg", item.id))
            if minute != 1:  # no temperature at the second minute: an empty cell
                readings.append(measurement(TENANT, "temperature", moment, 20.5 + minute, "Cel", item.id))
    await store(runtime, readings)
    return seeded


def things_item(**selection: object) -> dict[str, object]:
    return {"things": {"from": ms(START), "to": ms(END), **selection}}


async def test_one_file_per_thing_with_its_metrics_side_by_side(
    runtime: Runtime, things: list[Thing]
) -> None:
    columns = [{"id": "time", "label": "Timestamp"}]
    request = body(
        "csv",
        [things_item(customerId="c1", metrics=["weight", "temperature"])],
        columns=columns,
        includeUnit=True,
        timestampFormat="EPOCH_MILLIS",
    )
    outcome = await render(runtime, job_spec(TENANT, request))

    assert outcome.result.status is JobStatus.DONE, outcome.result.error
    names = ["SN-1_Scale.csv", "SN-2_Scale.csv"]
    assert [file.name for file in outcome.result.files] == [*names, "Weights of March.zip"]
    rows = list(csv.reader(io.StringIO(outcome.objects["SN-2_Scale.csv"].decode(), newline="")))
    assert rows == [
        ["Timestamp", "weight [kg]", "temperature [Cel]"],
        [str(ms(START)), "20.0", "20.5"],
        [str(ms(START + timedelta(minutes=1))), "21.0", ""],
        [str(ms(START + timedelta(minutes=2))), "22.0", "22.5"],
    ]
    assert outcome.file("SN-2_Scale.csv").rows == 3
    archive = zipfile.ZipFile(io.BytesIO(outcome.objects["Weights of March.zip"]))
    assert archive.namelist() == names


async def test_product_model_part_and_thing_definition_pick_the_things(
    runtime: Runtime, things: list[Thing]
) -> None:
    """Seed 001's qualified metrics: each selection's metrics, of the things its filters match."""
    items = [
        things_item(productModelId="pm-c1", productModelPartId="scale", metrics=["weight"]),
        things_item(thingDefinitionId="td-2", metrics=["temperature"]),
        things_item(productModelId="pm-c1", productModelPartId="other"),
    ]
    mask = "${thing.id}_${thing.productModelId}_${thing.productModelPartId}"
    outcome = await render(runtime, job_spec(TENANT, body("csv", items, filenameMask=mask)))

    assert outcome.result.status is JobStatus.DONE, outcome.result.error
    names = ["t-1_pm-c1_scale.csv", "t-2_pm-c1_scale.csv", "t-3_pm-c2_scale.csv"]
    assert [file.name for file in outcome.result.files] == [*names, "Weights of March.zip"]
    headers = [outcome.objects[name].decode().splitlines()[0] for name in names]
    assert headers == ["time,weight", "time,weight", "time,temperature"]


async def test_a_thing_by_id_every_metric_hashed_names(runtime: Runtime, things: list[Thing]) -> None:
    request = body("json", [things_item(thingId="t-3")], hashFilenames=True)
    outcome = await render(runtime, job_spec(TENANT, request))

    # One thing, one file: no zip. Its name is the MD5 of seed 001's default mask.
    name = f"{hashlib.md5(b'SN-3_Scale').hexdigest()}.json"
    assert list(outcome.objects) == [name]
    rows = json.loads(outcome.objects[name])
    assert rows[0] == {"time": "2026-03-02T09:00:00.000+01:00", "weight": 30.0, "temperature": 20.5}
    assert len(rows) == 3


async def test_thing_measurements_are_decimated_per_metric(runtime: Runtime, things: list[Thing]) -> None:
    item = things_item(thingId="t-1", decimation={"ds": "1h", "dsf": "avg"})
    outcome = await render(runtime, job_spec(TENANT, body("jsonl", [item], filenameMask="${thing.name}")))

    assert [json.loads(line) for line in outcome.objects["Scale SN-1.jsonl"].splitlines()] == [
        {"time": "2026-03-02T09:00:00.000+01:00", "weight": 11.0, "temperature": 21.5}
    ]


@pytest.fixture
async def entities(runtime: Runtime) -> list[Entity]:
    orders = [
        Entity(
            entity_type="OrderItem",
            id=f"o-{n}",
            version=1,
            document={"Id": f"o-{n}", "Amount": n, "Note": "ü"},
        )
        for n in range(5)
    ]
    payment = Entity(entity_type="Payment", id="p-1", version=1, document={"Id": "p-1", "Lines": [{"a": 1}]})
    outcome = await runtime.entities.upsert_many([(TENANT, e) for e in [*orders, payment]])
    assert outcome.written == len(orders) + 1
    return orders


async def test_entities_as_json_lines_in_parts(runtime: Runtime, entities: list[Entity]) -> None:
    configure(runtime, split_rows=2)
    request = body("jsonl", [{"entities": {"entityType": "OrderItem"}}], compression="gzip")
    outcome = await render(runtime, job_spec(TENANT, request))

    assert outcome.result.status is JobStatus.DONE, outcome.result.error
    parts = [f"OrderItem-part-00{n}.jsonl.gz" for n in (1, 2, 3)]
    assert [file.name for file in outcome.result.files] == [*parts, "Weights of March.zip"]

    documents = [
        json.loads(line) for part in parts for line in gzip.decompress(outcome.objects[part]).splitlines()
    ]
    assert documents == [entity.document for entity in entities]
    assert [outcome.file(part).size_in_bytes for part in parts] == [
        len(outcome.objects[part]) for part in parts
    ]
    assert outcome.result.row_count == len(entities)


@pytest.fixture(scope="module")
async def api(servers: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(isolated(servers, one_active_job_per_target=True)) as url:
        headers = {"X-User-Id": "alice", "X-Tenant-Id": TENANT}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=20) as client:
            yield client


async def test_one_export_in_flight_per_entity_type(api: httpx.AsyncClient) -> None:
    def entity_export(entity_type: str) -> dict[str, object]:
        return {
            "type": "oneTime",
            "format": {"extension": "jsonl"},
            "items": [{"entities": {"entityType": entity_type}}],
        }

    created = await api.post("/exports", json=entity_export("Reservation"))
    assert created.status_code == 201  # and its job queued with it
    refused = await api.post("/exports", json=entity_export("Reservation"))
    assert refused.status_code == 409
    assert refused.json()["message"].startswith("An export of the same target is already notProcessed")
    assert (await api.post("/exports", json=entity_export("Customer"))).status_code == 201


async def test_item_kinds_are_validated_and_documented(api: httpx.AsyncClient) -> None:
    both = copy.deepcopy({**SEED_000, "type": "oneTime"})
    both["items"][0]["entities"] = {"entityType": "Bill"}
    refused = await api.post("/exports", json=both)
    assert refused.status_code == 400
    assert "exactly one of 'params'" in refused.json()["message"]

    schemas = (await api.get("/openapi.json")).json()["components"]["schemas"]
    assert {"params", "things", "entities", "filename"} <= schemas["Item"]["properties"].keys()
    assert "entityType" in schemas["EntitySelection"]["properties"]
    assert {"customerId", "locationId", "thingId", "metrics"} <= schemas["ThingSelection"][
        "properties"
    ].keys()

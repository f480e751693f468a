"""Seed 001's data-export run to completion across every service: the thing with its product
model through the ingestor, the seed's body over HTTP, the renderer's archive, and the
details' ``url`` downloading it. Readings are the demo's (``make run``)."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from datetime import timedelta
from typing import Any

import httpx
import pytest

from exporter.adapters.mongo.client import THINGS, connect, database
from exporter.contracts.events import ThingUpdated
from exporter.contracts.ingest import Thing, ThingDefinition, ThingMetric
from exporter.local.demo import DEVICE, START, WINDOW_MINUTES, demo_measurements, ingested, publish
from exporter.local.services import LocalServices
from exporter.settings import Settings
from exporter.topics import Topic
from tests.e2e.test_thin_path import eventually
from tests.servitly_cases import assert_data_export, seed_001_body

pytestmark = pytest.mark.servers
TENANT = "default"  # the local services' default tenant, which the demo readings are in
HEADERS = {"X-User-Id": "servitly-user", "X-Servitly-Tenant": TENANT}


def ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


async def thing_stored(settings: Settings, version: int) -> None:
    client = connect(settings)
    try:
        query = {"tenant": TENANT, "id": DEVICE, "version": version, "productModelId": "pm-1"}

        async def found() -> dict[str, Any] | None:
            return await database(client, settings)[THINGS].find_one(query)

        await eventually(found, what="the thing's metadata in the store")
    finally:
        await client.close()


async def test_a_data_export_completes_and_its_url_downloads_the_archive(
    services: LocalServices, servers: Settings
) -> None:
    version = time.time_ns() // 1_000_000  # newer than any demo thing stored before
    thing = Thing(
        id=DEVICE,
        version=version,
        serial_number="SN-0001",
        thing_definition=ThingDefinition(id="td-1", name="TemperatureSensor"),
        customer_id="customer-1",
        location_id="plant-1",
        product_model_id="pm-1",
        product_model_part_id="sensor",
        metrics=[ThingMetric(name="temperature", unit="Cel")],
    )
    update = ThingUpdated(id=f"servitly-thing-{version}", source="tests", tenant=TENANT, data=thing)
    await publish(servers, Topic.THINGS.value, DEVICE, update.to_wire())
    await publish(servers, Topic.MEASUREMENTS.value, DEVICE, demo_measurements().to_wire())
    await thing_stored(servers, version)
    await ingested(servers)

    body = seed_001_body(ms(START), ms(START + timedelta(minutes=WINDOW_MINUTES)))
    async with httpx.AsyncClient(base_url=services.api_url, headers=HEADERS, timeout=10) as api:
        created = await api.post("/data/dataExports", json=body)
        assert created.status_code == 201, created.text
        assert_data_export(created.json(), body)
        path = f"/data/dataExports/{created.json()['id']}"

        async def finished() -> dict[str, Any] | None:
            details: dict[str, Any] = (await api.get(path)).json()
            return details if details["state"] != "PENDING" else None

        details = await eventually(finished, what="the data-export to complete")
    assert_data_export(details, body, details=True)
    assert details["state"] == "COMPLETED"
    assert details["url"], details

    async with httpx.AsyncClient() as plain:
        archive = await plain.get(details["url"])
    assert archive.status_code == 200
    zipped = zipfile.ZipFile(io.BytesIO(archive.content))
    assert zipped.namelist() == ["SN-0001_TemperatureSensor.csv"]
    rows = list(csv.reader(io.StringIO(zipped.read("SN-0001_TemperatureSensor.csv").decode(), newline="")))
    assert rows[0] == ["time", "temperature [Cel]"]  # includeUnit
    assert len(rows) == 1 + WINDOW_MINUTES
    assert rows[1] == [str(ms(START)), "20.0"]  # EPOCH_MILLIS

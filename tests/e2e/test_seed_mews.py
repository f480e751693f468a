"""Seed 003 (Mews "Exports") across the five services: entities in through the ingestor's topic,
the seed's ``exports/add`` body over HTTP as written, the job rendered by the renderer, and
``exports/getAll`` answering ``Success`` with a ``Url`` that downloads the JSON Lines."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from exporter.adapters.mongo.client import ENTITIES, connect, database
from exporter.local.demo import send_record
from exporter.local.services import LocalServices
from exporter.settings import Settings
from exporter.signing import TENANT_HEADER
from exporter.topics import Topic
from tests.e2e.conftest import SEED_003_TENANT
from tests.e2e.test_thin_path import eventually

pytestmark = pytest.mark.servers
# docs/seeds/003.txt's "Add export" request, as written.
SEED_ADD = {
    "ClientToken": "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D",
    "AccessToken": "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",
    "Client": "Sample Client 1.0.0",
    "EntityType": "OrderItem",
}


@pytest.fixture(scope="module")
async def api(services: LocalServices) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=services.api_url, timeout=10) as client:
        yield client


async def test_an_added_export_runs_and_its_url_downloads_the_entities(
    services: LocalServices, api: httpx.AsyncClient, servers: Settings
) -> None:
    orders = [{"Id": f"order-{n}", "Amount": n * 1.5, "Note": "ü"} for n in range(4)]
    headers = [(TENANT_HEADER, SEED_003_TENANT.encode())]
    for n, order in enumerate(orders):
        record = {"entityType": "OrderItem", "id": f"order-{n}", "version": 1, "document": order}
        await send_record(servers, Topic.ENTITIES.value, f"order-{n}", json.dumps(record).encode(), headers)

    async def all_ingested() -> bool | None:
        # A pending export of them refuses the next add: add only once the ingestor has them all.
        return True if await _stored_orders(servers) == len(orders) else None

    await eventually(all_ingested, what="the ingestor to store the entities")
    added = await api.post("/api/connector/v1/exports/add", json=SEED_ADD)
    assert added.status_code == 200, added.text
    export_id = added.json()["Export"]["Id"]

    async def finished() -> dict[str, Any] | None:
        body = {**{k: v for k, v in SEED_ADD.items() if k != "EntityType"}, "ExportIds": [export_id]}
        [export] = (await api.post("/api/connector/v1/exports/getAll", json=body)).json()["Exports"]
        return export if export["Status"] in {"Success", "Failed"} else None

    export = await eventually(finished, what="the export to finish")
    assert export["Status"] == "Success"
    assert (export["Id"], export["EntityType"]) == (str(uuid.UUID(export_id)), "OrderItem")
    [file] = export["Files"]
    async with httpx.AsyncClient(timeout=10) as plain:
        downloaded = await plain.get(file["Url"])
    assert downloaded.status_code == 200
    assert file["SizeInBytes"] == len(downloaded.content)
    assert [json.loads(line) for line in downloaded.content.splitlines()] == orders


async def _stored_orders(settings: Settings) -> int:
    client = connect(settings)
    try:
        entities = database(client, settings)[ENTITIES]
        return await entities.count_documents({"tenant": SEED_003_TENANT, "entityType": "OrderItem"})
    finally:
        await client.close()

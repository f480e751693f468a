"""The request-api serves the AsyncAPI document as JSON and as a page that needs no network (the
routes answer before any lifespan runs: no servers)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from exporter.contracts.asyncapi import asyncapi_document
from exporter.settings import KafkaSettings, Settings
from request_api.app import create_app

SETTINGS = Settings(
    kafka=KafkaSettings(
        bootstrap_servers="broker-1.internal:9093,broker-2.internal:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        username="exporter",
        password="not-in-the-document",
    )
)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(SETTINGS))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def test_the_json_is_the_document_with_the_deployments_broker_and_no_secret(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/asyncapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    document = answer.json()
    assert document == asyncapi_document(SETTINGS.kafka)
    assert document["servers"]["deployment"] == {
        "host": "broker-1.internal:9093",
        "protocol": "kafka-secure",
        "description": "The broker this deployment's services use, as configured.",
        "security": [{"$ref": "#/components/securitySchemes/scramSha256"}],
    }
    assert "not-in-the-document" not in answer.text


async def test_the_page_shows_every_channel_and_message_and_loads_nothing_from_elsewhere(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/asyncapi")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    document = asyncapi_document(SETTINGS.kafka)
    for address in document["channels"]:
        assert f'id="channel-{address}"' in page
    for kind in ("message", "schema"):
        for name in document["components"][f"{kind}s"]:
            assert f'id="{kind}-{name}"' in page
    anchors = set(re.findall(r'id="([^"]+)"', page))
    assert set(re.findall(r'href="#([^"]+)"', page)) <= anchors
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


async def test_the_routes_stay_out_of_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if "asyncapi" in path]

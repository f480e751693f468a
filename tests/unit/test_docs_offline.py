"""``/docs`` and ``/redoc`` load every script and style from this service, pinned, with long-cache
headers (routes answer before any lifespan runs: no servers)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from exporter.settings import Settings
from request_api.app import create_app
from request_api.routers.docs import LONG_CACHE


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(Settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_page_loads_its_assets_from_here_and_they_are_served(
    client: httpx.AsyncClient, page: str
) -> None:
    answer = await client.get(page)
    assert answer.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", answer.text)
    assert assets
    assert not [asset for asset in assets if "//" in asset]
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert served.headers["cache-control"] == LONG_CACHE
        assert served.content


async def test_the_docs_stay_out_of_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not {"/docs", "/redoc"} & set(paths)


async def test_a_missing_static_file_is_404_without_long_cache(client: httpx.AsyncClient) -> None:
    answer = await client.get("/static/vendor/none.js")
    assert answer.status_code == 404
    assert "cache-control" not in answer.headers

"""The request-api assembled from its routers: what the assembly must keep across them (no
servers: routing and the OpenAPI document answer before any handler or lifespan runs)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from exporter.settings import Settings
from request_api.app import create_app

APP = create_app(Settings())


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for path in document["paths"].values()
        for operation in path.values()
    }


def test_operation_ids_are_the_handlers_names_and_every_link_leads_to_one() -> None:
    found = operations(APP.openapi())
    assert set(found) == {
        "create_export",
        "list_exports",
        "batch_get",
        "get_export",
        "update_export",
        "delete_export",
        "run_export",
        "list_jobs",
        "get_job",
        "cancel_job",
        "download",
        "mews_add_export",
        "mews_get_all_exports",
        "create_transfer_location",
        "list_transfer_locations",
        "get_transfer_location",
        "replace_transfer_location",
        "delete_transfer_location",
    }
    targets = {
        link["operationId"]
        for operation in found.values()
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    }
    assert targets
    assert targets <= set(found)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/exports", "GET, POST"),
        ("POST", "/exports/e1", "DELETE, GET, PUT"),
        ("GET", "/jobs/j1/cancel", "POST"),
    ],
)
async def test_a_405_lists_every_method_served_at_the_path_whichever_router_serves_it(
    method: str, path: str, allowed: str
) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://api") as client:
        answer = await client.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == allowed

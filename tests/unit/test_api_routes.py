"""The request-api assembled from its routers: what the assembly must keep across them (no
servers: routing and the OpenAPI document answer before any handler or lifespan runs)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from exporter.settings import Settings
from request_api.app import create_app

APP = create_app(Settings())


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for path in document["paths"].values()
        for operation in path.values()
    }


def seed_operation(operation: dict[str, Any]) -> bool:
    """An operation of a seed's own API (tagged "Seed NNN ..."): it answers in the seed's shapes."""
    return any(tag.startswith("Seed ") for tag in operation.get("tags", []))


def test_operation_ids_are_the_handlers_names_and_every_link_leads_to_one() -> None:
    found = operations(APP.openapi())
    assert set(found) == {
        "get_version",
        "create_export",
        "list_exports",
        "batch_get",
        "get_export",
        "update_export",
        "delete_export",
        "run_export",
        "list_jobs",
        "list_all_jobs",
        "get_job",
        "cancel_job",
        "download",
        "mews_add_export",
        "mews_get_all_exports",
        "create_data_export",
        "get_data_export",
        "history_all",
        "history_paged",
        "history_entry",
        "history_download",
        "history_cancel",
        "history_trigger",
    }
    targets = {
        link["operationId"]
        for operation in found.values()
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    }
    assert targets
    assert targets <= set(found)


# What each operation refuses beyond 400, 401 and 503 (its input, its caller, the identity
# provider's keys), as the handlers raise it.
REFUSALS = {
    "get_version": set(),
    "create_export": {403, 409, 413, 422, 429},
    "list_exports": set(),
    "batch_get": {413},
    "get_export": {403, 404},
    "update_export": {403, 404, 409, 410, 412, 413},
    "delete_export": {403, 404, 409, 410, 412},
    "run_export": {403, 404, 409, 410, 429},
    "list_jobs": {403, 404},
    "list_all_jobs": set(),
    "get_job": {403, 404},
    "cancel_job": {403, 404, 409},
    "download": {403, 404, 409, 410},
}


def test_every_operation_documents_its_answer_model_its_refusals_and_its_security() -> None:
    document = APP.openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"} | {
        "description": schemes["bearer"]["description"]
    }
    assert schemes["userHeader"]["name"] == "X-User-Id"
    for name, operation in operations(document).items():
        responses = operation["responses"]
        [success] = [code for code in responses if code.startswith("2")]
        schema = responses[success]["content"]["application/json"]["schema"]
        assert schema["$ref"].removeprefix("#/components/schemas/") in document["components"]["schemas"], name
        refusals = {int(code) for code in responses if code[0] in "45"}
        if seed_operation(operation):
            # The seed's own error shape (which may be ours), one for all its refusals.
            shapes = {str(responses[str(code)]["content"]["application/json"]["schema"]) for code in refusals}
            assert len(shapes) == 1, name
            continue
        error = {"$ref": "#/components/schemas/ErrorBody"}
        for code in refusals:
            assert responses[str(code)]["content"]["application/json"]["schema"] == error, (name, code)
        if name == "get_version":
            assert operation["security"] == []
            assert refusals == set()
        else:
            assert operation["security"] == [{"bearer": []}, {"userHeader": []}], name
            assert refusals == {400, 401, 503} | REFUSALS[name], name


def test_no_operation_documents_fastapis_validation_error_this_api_answers_400_instead() -> None:
    document = APP.openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    found = operations(document)
    unprocessable = {name for name, operation in found.items() if "422" in operation["responses"]}
    assert unprocessable == {"create_export"}  # a reused Idempotency-Key, an ErrorBody


def test_429_and_503_document_retry_after_and_create_its_location_and_etag() -> None:
    found = operations(APP.openapi())
    for name, code in [("create_export", "429"), ("run_export", "429"), ("get_job", "503")]:
        assert "Retry-After" in found[name]["responses"][code]["headers"]
    assert {"ETag", "Location"} <= set(found["create_export"]["responses"]["201"]["headers"])
    for name in ("get_export", "update_export", "delete_export", "get_job"):
        [success] = [code for code in found[name]["responses"] if code.startswith("2")]
        assert "ETag" in found[name]["responses"][success]["headers"], name


def test_every_example_fits_the_schema_it_illustrates() -> None:
    document = APP.openapi()
    schemas = document["components"]["schemas"]
    illustrated = {name: schema for name, schema in schemas.items() if "examples" in schema}
    expected = {"ExportRequestSpec", "ExportRequestView", "JobView", "RequestPage", "VersionInfo"}
    assert expected <= set(illustrated)
    for name, schema in illustrated.items():
        validator = Draft202012Validator({**schema, "components": document["components"]})
        for example in schema["examples"]:
            assert [error.message for error in validator.iter_errors(example)] == [], name


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

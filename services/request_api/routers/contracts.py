"""The event contracts, outside the OpenAPI document: the AsyncAPI document of every topic as
JSON (``/asyncapi.json``) and as a page (``/asyncapi``), open to all like ``/docs``."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from exporter.contracts.asyncapi import as_json, asyncapi_document
from exporter.settings import Settings
from request_api.asyncapi_page import asyncapi_page

router = APIRouter()


@dataclass(frozen=True)
class Rendered:
    json: bytes
    html: bytes


def rendered(request: Request) -> Rendered:
    """Built on the first request and kept: the document changes only with the code and settings."""
    state = request.app.state
    if getattr(state, "asyncapi", None) is None:
        settings: Settings = state.settings
        document = asyncapi_document(settings.kafka)
        state.asyncapi = Rendered(as_json(document).encode(), asyncapi_page(document).encode())
    result: Rendered = state.asyncapi
    return result


@router.get("/asyncapi.json", include_in_schema=False)
async def asyncapi_json(request: Request) -> Response:
    return Response(rendered(request).json, media_type="application/json")


@router.get("/asyncapi", include_in_schema=False)
async def asyncapi_html(request: Request) -> HTMLResponse:
    return HTMLResponse(rendered(request).html)

"""The request-api's HTTP application: its routers assembled, the body-size limit, the error
shapes, and the process lifespan. The routes themselves are in ``request_api.routers``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from exporter.metrics.http import HttpMetrics, metrics_router
from exporter.runtime import Runtime, freeze_startup_heap
from exporter.settings import Settings
from request_api.errors import ApiError
from request_api.http import SECURITY, JsonBody, describe_request_error
from request_api.identity import SECURITY_SCHEMES, Identity
from request_api.limits import BodySizeLimit
from request_api.request_ids import RequestIds
from request_api.routers import (
    console,
    contracts,
    docs,
    exports,
    health,
    history,
    jobs,
    meta,
    mews,
    servitly,
    transfer_locations,
)

log = logging.getLogger(__name__)


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at the request's path (the routers' routes included)."""
    methods: set[str] = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.matches(scope)[0] is not Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


async def _invalid(_: Request, error: RequestValidationError) -> JsonBody:
    return JsonBody(status_code=400, content={"message": describe_request_error(error)})


async def _refused(_: Request, error: ApiError) -> JsonBody:
    return JsonBody(
        status_code=error.status_code,
        content={"message": error.message, **error.extra},
        headers=error.headers,
    )


async def _http_error(request: Request, error: StarletteHTTPException) -> JsonBody:
    headers = dict(error.headers or {})
    if error.status_code == 405:
        # Starlette names only the first route that matched the path; list them all (RFC 9110).
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
    return JsonBody(status_code=error.status_code, content={"message": str(error.detail)}, headers=headers)


async def _internal(request: Request, error: Exception) -> JsonBody:
    """A failure of ours or of a dependency: logged whole, answered with nothing of it (its
    text names hosts and topology)."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=error)
    return JsonBody(status_code=500, content={"message": "Internal server error"})


# FastAPI's own, for routes with parameters: this API answers an invalid request 400 (``_invalid``).
PHANTOM = {"$ref": "#/components/schemas/HTTPValidationError"}


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the security of every identified operation, and without the
    422 FastAPI documents for validation errors (a 422 this API answers is an ``ErrorBody``)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        for path in document["paths"].values():
            for operation in path.values():
                unprocessable = operation["responses"].get("422", {})
                if unprocessable.get("content", {}).get("application/json", {}).get("schema") == PHANTOM:
                    del operation["responses"]["422"]
                operation.setdefault("security", SECURITY)
        schemas = document["components"]["schemas"]
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        document["components"]["securitySchemes"] = SECURITY_SCHEMES
        app.openapi_schema = document
    return app.openapi_schema


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings)
        await runtime.start(relay=True)
        await runtime.start_metrics()
        app.state.runtime = runtime
        freeze_startup_heap()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="Exporter request-api",
        version="1.0.0",
        lifespan=lifespan,
        default_response_class=JsonBody,
        # Operation ids are the handlers' names, which the OpenAPI links refer to.
        generate_unique_id_function=lambda route: route.name,
        # Served by ``routers.docs`` from this service's own assets, not a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.identity = Identity(settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)
    if settings.metrics.enabled:
        app.add_middleware(HttpMetrics)  # it sees every answer but those of RequestIds (none)
    app.add_middleware(RequestIds)  # outermost: a refused body's lines carry the id too
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal)
    ours = (health, meta, contracts, docs, console, exports, jobs, transfer_locations)
    routers = (*ours, servitly, mews, history)  # then the seeds' own APIs
    for router in (*(module.router for module in routers), metrics_router(settings.metrics)):
        app.include_router(router)
    app.mount(docs.STATIC_URL, docs.static_files(), name="static")
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app

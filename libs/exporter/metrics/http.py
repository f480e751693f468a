"""The request-api's HTTP metrics and its ``GET /metrics``.

A plain ASGI middleware, not a ``BaseHTTPMiddleware``: the latter runs each request in a task
of its own, which costs more than the metrics themselves. The route label is the matched
route's template (``/exports/{request_id}``), read from the scope after routing; a path that
matched none is ``unmatched``, so a scanner's random paths make no new series.
"""

from __future__ import annotations

import hmac
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exporter.metrics import HTTP_DURATION, HTTP_REQUESTS, REGISTRY, UNMATCHED, method_label
from exporter.settings.metrics import MetricsSettings


class HttpMetrics:
    """Counts each HTTP request by method, route template and status, and times it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # an exception that escapes every handler is answered 500 by the server

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED)
            method = method_label(scope["method"])
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(time.perf_counter() - began)


def exposition() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def metrics_router(settings: MetricsSettings) -> APIRouter:
    """``GET /metrics`` on the API's own port, outside the OpenAPI document: to the configured
    bearer token only (404 without one), since the public port faces clients, not the scraper."""
    router = APIRouter()
    expected = f"Bearer {settings.token.get_secret_value()}".encode() if settings.token else None

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if expected is None:
            return Response(status_code=404)
        if not hmac.compare_digest(given, expected):
            return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return exposition()

    return router

"""The liveness and readiness probes, outside the OpenAPI document.

``/health``: 503 while a loop of this process (the outbox relay) has stopped making progress, so
an orchestrator restarts it. ``/ready``: 503 also while MongoDB, Kafka or S3 did not answer the
latest background check, so no traffic is sent here meanwhile (a restart would not help)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from exporter.runtime import Runtime
from request_api.http import JsonBody

router = APIRouter()


@router.get("/health", include_in_schema=False)
async def health(request: Request) -> JsonBody:
    runtime: Runtime = request.app.state.runtime
    report: dict[str, Any] = runtime.liveness.report()
    return JsonBody(status_code=200 if report["status"] == "ok" else 503, content=report)


@router.get("/ready", include_in_schema=False)
async def ready(request: Request) -> JsonBody:
    runtime: Runtime = request.app.state.runtime
    report: dict[str, Any] = runtime.readiness.report()
    return JsonBody(status_code=200 if report["ready"] else 503, content=report)

"""The liveness probe, outside the OpenAPI document: 503 while a loop of this process (the
outbox relay) has stopped making progress, so an orchestrator restarts it."""

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

"""The request-api's HTTP surface: routes, error shapes and the process lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from exporter.contracts.request import ExportRequestSpec
from exporter.runtime import Runtime
from exporter.settings import Settings
from request_api import commands
from request_api.identity import Identity, identity_from_headers
from request_api.views import job_view

CurrentIdentity = Annotated[Identity, Depends(identity_from_headers)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


def describe_request_error(error: RequestValidationError) -> str:
    """Names the field of each problem, without the transport's ``body`` prefix."""
    problems = []
    for issue in error.errors():
        location = [str(part) for part in issue.get("loc", ()) if part != "body"]
        message = str(issue.get("msg", "is invalid")).removeprefix("Value error, ")
        problems.append(f"{'.'.join(location) or 'body'}: {message}")
    return "; ".join(problems)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings)
        await runtime.prepare()
        await runtime.broker.connect()
        await runtime.start_relay()
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.close()
            await runtime.broker.stop()

    app = FastAPI(title="Exporter request-api", version="1.0.0", lifespan=lifespan)
    app.state.settings = settings

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"message": describe_request_error(error)})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=error.status_code, content={"message": str(error.detail)}, headers=error.headers
        )

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/exports", status_code=201)
    async def create_export(spec: ExportRequestSpec, identity: CurrentIdentity, runtime: RuntimeDep) -> Any:
        request = await commands.create_export(runtime, identity, spec)
        return request.to_wire()

    @app.get("/exports/{export_id}")
    async def get_export(export_id: str, identity: CurrentIdentity, runtime: RuntimeDep) -> Any:
        request = await runtime.requests.get(identity.tenant, export_id)
        if request is None or request.owner != identity.user:
            raise HTTPException(status_code=404, detail=f"Export request '{export_id}' not found")
        return request.to_wire()

    @app.get("/exports/{export_id}/jobs")
    async def list_jobs(export_id: str, identity: CurrentIdentity, runtime: RuntimeDep) -> Any:
        request = await runtime.requests.get(identity.tenant, export_id)
        if request is None or request.owner != identity.user:
            raise HTTPException(status_code=404, detail=f"Export request '{export_id}' not found")
        jobs = await runtime.jobs.list_for_request(identity.tenant, export_id)
        return {"items": [job_view(job) for job in jobs], "totalCount": len(jobs)}

    @app.get("/jobs/{job_id}")
    async def get_job(job_id: str, identity: CurrentIdentity, runtime: RuntimeDep) -> Any:
        job = await runtime.jobs.get(job_id, tenant=identity.tenant)
        if job is None or job["owner"] != identity.user:
            raise HTTPException(status_code=404, detail=f"Job '{job_id}' not found")
        return job_view(job)

    return app

"""The request-api's HTTP surface: routes, error shapes and the process lifespan."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pydantic_core
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from exporter.contracts.request import BoundedInstant, ExportRequestSpec, ExportType
from exporter.domain.access import Action, Principal
from exporter.runtime import Runtime, freeze_startup_heap
from exporter.settings import Settings
from request_api import commands
from request_api.errors import ApiError, BadRequest
from request_api.identity import IDENTITY_PARAMETERS, Identity, current_principal, header_parameter
from request_api.limits import BodySizeLimit
from request_api.views import job_view, request_view

log = logging.getLogger(__name__)
Caller = Annotated[Principal, Depends(current_principal)]
MAX_BATCH_IDS = 1000
_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_date_time(value: Any) -> Any:
    """The schema promises ISO 8601 date-times; pydantic alone would also take epoch numbers."""
    if isinstance(value, str) and not _ISO_DATE_TIME.match(value):
        raise ValueError("must be an ISO 8601 date-time such as 2026-01-31T00:00:00Z")
    return value


IsoDateTime = Annotated[BoundedInstant, BeforeValidator(_iso_date_time)]


async def _runtime(request: Request) -> Runtime:
    """Async, so FastAPI calls it inline instead of in its thread pool."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
IDENTIFIED: dict[str, Any] = {"parameters": IDENTITY_PARAMETERS}
MAX_IDEMPOTENCY_KEY = 200


class JsonBody(JSONResponse):
    """JSON rendered by pydantic-core, several times faster than ``json.dumps``. Handlers return
    it themselves: a plain dict would first go through FastAPI's ``jsonable_encoder``, a walk
    over every value of a body that is JSON-ready already."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)


class ErrorBody(BaseModel):
    message: str


class Pagination(BaseModel):
    page: int = Field(default=1, ge=1, le=100_000)
    page_size: int = Field(default=20, ge=1, le=1000, alias="pageSize")
    exclude_total_count: bool = Field(default=False, alias="excludeTotalCount")

    @property
    def skip(self) -> int:
        return (self.page - 1) * self.page_size


class BatchGet(BaseModel):
    ids: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]],
        Field(min_length=1, max_length=MAX_BATCH_IDS),
    ]


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": description}
    for code, description in {
        400: "Invalid request or missing identity",
        401: "Invalid bearer token",
        403: "Not authorized",
        404: "Not found (or another tenant's)",
    }.items()
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    extra = {
        409: "Conflicting state (changed meanwhile, or a job on the same target in flight)",
        410: "Deleted or expired",
        413: "Body too large",
        422: "Idempotency-Key reused with another body",
        429: "Maximum number of queued exports reached",
    }
    return ERRORS | {code: {"model": ErrorBody, "description": extra[code]} for code in codes}


def _links(parameter: str, pointer: str, *operations: str) -> dict[str, Any]:
    """OpenAPI links: where the id in an answer leads, for clients and for stateful fuzzing."""
    return {
        "links": {
            operation: {"operationId": operation, "parameters": {parameter: f"$response.body#{pointer}"}}
            for operation in operations
        }
    }


EXPORT_OPERATIONS = ("get_export", "update_export", "delete_export", "run_export", "list_jobs")
JOB_OPERATIONS = ("get_job", "cancel_job", "download")
EXPORT_LINKS = _links("export_id", "/id", *EXPORT_OPERATIONS)
JOB_LINKS = _links("job_id", "/id", *JOB_OPERATIONS)


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at the request's path."""
    methods: set[str] = set()
    for route in app.routes:
        if isinstance(route, APIRoute) and route.matches(scope)[0] is not Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


def describe_request_error(error: RequestValidationError) -> str:
    """Names the field of each problem, without the transport's ``body`` prefix."""
    problems = []
    for issue in error.errors():
        location = [str(part) for part in issue.get("loc", ()) if part != "body"]
        message = str(issue.get("msg", "is invalid")).removeprefix("Value error, ")
        problems.append(f"{'.'.join(location) or 'body'}: {message}")
    return "; ".join(problems)


def paged(items: list[Any], pagination: Pagination, total: int | None) -> dict[str, Any]:
    """Seed 004's paged shape."""
    body: dict[str, Any] = {
        "pagination": {
            "pageNumber": pagination.page,
            "pageSize": pagination.page_size,
            "excludeTotalCount": pagination.exclude_total_count,
        },
        "items": items,
    }
    if total is not None:
        body["totalCount"] = total
    return body


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, read like the identity headers (see IDENTITY_PARAMETERS)."""
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise BadRequest(f"Idempotency-Key: must be 1 to {MAX_IDEMPOTENCY_KEY} characters long")
    return key


CREATE_EXTRA: dict[str, Any] = {
    "parameters": [
        *IDENTITY_PARAMETERS,
        header_parameter(
            "Idempotency-Key",
            "The same key and body answer as the first call did; another body, 422",
            minLength=1,
            maxLength=MAX_IDEMPOTENCY_KEY,
        ),
    ]
}


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings)
        await runtime.start(relay=True)
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
        # Operation ids are the handlers' names, which the OpenAPI links below refer to.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.settings = settings
    app.state.identity = Identity(settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JsonBody:
        return JsonBody(status_code=400, content={"message": describe_request_error(error)})

    @app.exception_handler(ApiError)
    async def _refused(_: Request, error: ApiError) -> JsonBody:
        return JsonBody(
            status_code=error.status_code,
            content={"message": error.message, **error.extra},
            headers=error.headers,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JsonBody:
        headers = dict(error.headers or {})
        if error.status_code == 405:
            # Starlette names only the first route that matched the path; list them all (RFC 9110).
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return JsonBody(
            status_code=error.status_code, content={"message": str(error.detail)}, headers=headers
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, error: Exception) -> JsonBody:
        """A failure of ours or of a dependency: logged whole, answered with nothing of it (its
        text names hosts and topology)."""
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return JsonBody(status_code=500, content={"message": "Internal server error"})

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/exports",
        status_code=201,
        responses=_errors(409, 413, 422, 429) | {201: EXPORT_LINKS},
        openapi_extra=CREATE_EXTRA,
    )
    async def create_export(
        spec: ExportRequestSpec, caller: Caller, runtime: RuntimeDep, request: Request
    ) -> Any:
        """Creates an export request (authorization action ``exporter:exports:create``)."""
        answer = await commands.create_export(runtime, caller, spec, idempotency_key(request))
        return JsonBody(answer.body, status_code=answer.status_code)

    @app.get("/exports", responses=ERRORS, openapi_extra=IDENTIFIED)
    async def list_exports(
        caller: Caller,
        runtime: RuntimeDep,
        pagination: Annotated[Pagination, Query()],
        type: ExportType | None = None,
        status: Annotated[str | None, Query(pattern="^(active|paused|finished|deleted)$")] = None,
        created_from: Annotated[IsoDateTime | None, Query(alias="createdFrom")] = None,
        created_to: Annotated[IsoDateTime | None, Query(alias="createdTo")] = None,
    ) -> Any:
        where = await commands.visible_filter(
            runtime, caller, type=type, status=status, created_from=created_from, created_to=created_to
        )
        records = await runtime.requests.page(where, pagination.skip, pagination.page_size)
        total = None if pagination.exclude_total_count else await runtime.requests.count(where)
        return JsonBody(paged([request_view(record) for record in records], pagination, total))

    @app.post("/exports:batchGet", responses=ERRORS, openapi_extra=IDENTIFIED)
    async def batch_get(body: BatchGet, caller: Caller, runtime: RuntimeDep) -> Any:
        """Up to 1000 requests by id; ids not found or not readable are listed in ``notFound``."""
        wanted = list(dict.fromkeys(body.ids))
        records = {
            record.request.id: record for record in await runtime.requests.get_many(caller.tenant, wanted)
        }
        grants = await commands.grants_of(runtime, caller.tenant)
        readable = {
            request_id
            for request_id, record in records.items()
            if commands.decision(caller, Action.READ, record, grants).allowed
        }
        return JsonBody(
            {
                "items": [
                    request_view(records[request_id]) for request_id in wanted if request_id in readable
                ],
                "notFound": [request_id for request_id in wanted if request_id not in readable],
            }
        )

    @app.get("/exports/{export_id}", responses=ERRORS | {200: EXPORT_LINKS}, openapi_extra=IDENTIFIED)
    async def get_export(export_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
        return JsonBody(request_view(await commands.authorized(runtime, caller, export_id, Action.READ)))

    @app.put(
        "/exports/{export_id}",
        responses=_errors(409, 410, 413) | {200: EXPORT_LINKS},
        openapi_extra=IDENTIFIED,
    )
    async def update_export(
        export_id: str, spec: ExportRequestSpec, caller: Caller, runtime: RuntimeDep
    ) -> Any:
        return JsonBody(await commands.update_export(runtime, caller, export_id, spec))

    @app.delete("/exports/{export_id}", responses=_errors(409, 410), openapi_extra=IDENTIFIED)
    async def delete_export(export_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
        return JsonBody(await commands.delete_export(runtime, caller, export_id))

    @app.post(
        "/exports/{export_id}/run",
        status_code=202,
        responses=_errors(409, 410, 429) | {202: JOB_LINKS},
        openapi_extra=IDENTIFIED,
    )
    async def run_export(export_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
        return JsonBody(await commands.run_export(runtime, caller, export_id), status_code=202)

    @app.get(
        "/exports/{export_id}/jobs",
        responses=ERRORS | {200: _links("job_id", "/items/0/id", *JOB_OPERATIONS)},
        openapi_extra=IDENTIFIED,
    )
    async def list_jobs(
        export_id: str, caller: Caller, runtime: RuntimeDep, pagination: Annotated[Pagination, Query()]
    ) -> Any:
        await commands.authorized(runtime, caller, export_id, Action.READ)
        jobs = await runtime.jobs.page_for_request(
            caller.tenant, export_id, pagination.skip, pagination.page_size
        )
        total = (
            None
            if pagination.exclude_total_count
            else await runtime.jobs.count_for_request(caller.tenant, export_id)
        )
        return JsonBody(paged([job_view(job) for job in jobs], pagination, total))

    @app.get("/jobs/{job_id}", responses=ERRORS | {200: JOB_LINKS}, openapi_extra=IDENTIFIED)
    async def get_job(job_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
        job, _ = await commands.authorized_job(runtime, caller, job_id, Action.READ)
        return JsonBody(job_view(job))

    @app.post("/jobs/{job_id}/cancel", responses=_errors(409), openapi_extra=IDENTIFIED)
    async def cancel_job(job_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
        return JsonBody(await commands.cancel_job(runtime, caller, job_id))

    @app.get(
        "/jobs/{job_id}/download",
        responses=_errors(409, 410) | {307: {"description": "Redirect to the presigned URL"}},
        openapi_extra=IDENTIFIED,
    )
    async def download(
        job_id: str,
        caller: Caller,
        runtime: RuntimeDep,
        file: Annotated[int, Query(ge=0, le=10_000)] = 0,
        accept: Annotated[str | None, Header()] = None,
    ) -> Any:
        """A presigned link that expires soon (seed 004: 30 s): JSON for API clients, else a 307."""
        link = await commands.download_link(runtime, caller, job_id, file)
        if accept and "application/json" in accept:
            return JsonBody(
                {
                    "url": link.url,
                    "expiresAt": link.expires_at.isoformat().replace("+00:00", "Z"),
                    "file": link.file,
                }
            )
        return RedirectResponse(link.url, status_code=307)

    return app

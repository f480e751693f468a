"""``/exports``: export requests, and the jobs of one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from exporter.contracts.request import ExportRequestSpec, ExportType
from exporter.contracts.time_bounds import IsoDateTime
from request_api import commands, queries
from request_api.errors import BadRequest
from request_api.http import (
    CONDITIONAL_READ,
    CONDITIONAL_WRITE,
    ETAG,
    EXPORT_LINKS,
    IDENTIFIED,
    JOB_LINKS,
    JOB_OPERATIONS,
    LOCATION,
    NOT_MODIFIED,
    Caller,
    JsonBody,
    RuntimeDep,
    errors,
    identified_with,
    if_match,
    links,
    tagged,
)
from request_api.identity import header_parameter
from request_api.preconditions import version_tag
from request_api.queries import Pagination
from request_api.responses import BatchAnswer, ExportRequestView, JobPage, JobView, RequestPage

router = APIRouter()
MAX_BATCH_IDS = 1000
MAX_IDEMPOTENCY_KEY = 200


class BatchGet(BaseModel):
    ids: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]],
        Field(min_length=1, max_length=MAX_BATCH_IDS),
    ]


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, read like the identity headers (see IDENTITY_PARAMETERS)."""
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise BadRequest(f"Idempotency-Key: must be 1 to {MAX_IDEMPOTENCY_KEY} characters long")
    return key


CREATE_EXTRA = identified_with(
    header_parameter(
        "Idempotency-Key",
        "The same key and body answer as the first call did; another body, 422",
        minLength=1,
        maxLength=MAX_IDEMPOTENCY_KEY,
    )
)
EXPORT_HEADERS = {"headers": {"ETag": ETAG}}


def export_answer(request: Request, body: dict[str, Any], status_code: int = 200) -> Response:
    """An export request's answer, tagged with its version (see ``request_api.preconditions``)."""
    return tagged(request, body, version_tag(body["version"]), status_code)


@router.post(
    "/exports",
    status_code=201,
    response_model=ExportRequestView,
    responses=errors(403, 409, 413, 422, 429)
    | {201: EXPORT_LINKS | {"headers": {"ETag": ETAG, "Location": LOCATION}}},
    openapi_extra=CREATE_EXTRA,
)
async def create_export(
    spec: ExportRequestSpec, caller: Caller, runtime: RuntimeDep, request: Request
) -> Any:
    """Creates an export request (authorization action ``exporter:exports:create``)."""
    answer = await commands.create_export(runtime, caller, spec, idempotency_key(request))
    response = export_answer(request, answer.body, answer.status_code)
    response.headers["Location"] = f"/exports/{answer.body['id']}"
    return response


@router.get("/exports", response_model=RequestPage, responses=errors(), openapi_extra=IDENTIFIED)
async def list_exports(
    caller: Caller,
    runtime: RuntimeDep,
    pagination: Annotated[Pagination, Query()],
    type: ExportType | None = None,
    status: Annotated[str | None, Query(pattern="^(active|paused|finished|deleted)$")] = None,
    created_from: Annotated[IsoDateTime | None, Query(alias="createdFrom")] = None,
    created_to: Annotated[IsoDateTime | None, Query(alias="createdTo")] = None,
) -> Any:
    return JsonBody(
        await queries.list_exports(
            runtime,
            caller,
            pagination,
            type=type,
            status=status,
            created_from=created_from,
            created_to=created_to,
        )
    )


@router.post("/exports:batchGet", response_model=BatchAnswer, responses=errors(413), openapi_extra=IDENTIFIED)
async def batch_get(body: BatchGet, caller: Caller, runtime: RuntimeDep) -> Any:
    """Up to 1000 requests by id; ids not found or not readable are listed in ``notFound``."""
    return JsonBody(await queries.batch_get(runtime, caller, body.ids))


@router.get(
    "/exports/{export_id}",
    response_model=ExportRequestView,
    responses=errors(403, 404) | NOT_MODIFIED | {200: EXPORT_LINKS | EXPORT_HEADERS},
    openapi_extra=CONDITIONAL_READ,
)
async def get_export(export_id: str, caller: Caller, runtime: RuntimeDep, request: Request) -> Any:
    return export_answer(request, await queries.get_export(runtime, caller, export_id))


@router.put(
    "/exports/{export_id}",
    response_model=ExportRequestView,
    responses=errors(403, 404, 409, 410, 412, 413) | {200: EXPORT_LINKS | EXPORT_HEADERS},
    openapi_extra=CONDITIONAL_WRITE,
)
async def update_export(
    export_id: str, spec: ExportRequestSpec, caller: Caller, runtime: RuntimeDep, request: Request
) -> Any:
    """Replaces the request's spec: a new version. With If-Match, only the version it names."""
    return export_answer(
        request, await commands.update_export(runtime, caller, export_id, spec, if_match(request))
    )


@router.delete(
    "/exports/{export_id}",
    response_model=ExportRequestView,
    responses=errors(403, 404, 409, 410, 412) | {200: EXPORT_HEADERS},
    openapi_extra=CONDITIONAL_WRITE,
)
async def delete_export(export_id: str, caller: Caller, runtime: RuntimeDep, request: Request) -> Any:
    """Deletes the request (soft: its jobs stay readable). With If-Match, only the version it names."""
    return export_answer(request, await commands.delete_export(runtime, caller, export_id, if_match(request)))


@router.post(
    "/exports/{export_id}/run",
    status_code=202,
    response_model=JobView,
    responses=errors(403, 404, 409, 410, 429) | {202: JOB_LINKS},
    openapi_extra=IDENTIFIED,
)
async def run_export(export_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
    return JsonBody(await commands.run_export(runtime, caller, export_id), status_code=202)


@router.get(
    "/exports/{export_id}/jobs",
    response_model=JobPage,
    responses=errors(403, 404) | {200: links("job_id", "/items/0/id", *JOB_OPERATIONS)},
    openapi_extra=IDENTIFIED,
)
async def list_jobs(
    export_id: str, caller: Caller, runtime: RuntimeDep, pagination: Annotated[Pagination, Query()]
) -> Any:
    return JsonBody(await queries.list_jobs(runtime, caller, export_id, pagination))

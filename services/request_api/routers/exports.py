"""``/exports``: export requests, and the jobs of one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from exporter.contracts.request import ExportRequestSpec, ExportType
from exporter.contracts.time_bounds import IsoDateTime
from request_api import commands, queries
from request_api.errors import BadRequest
from request_api.http import (
    ERRORS,
    EXPORT_LINKS,
    IDENTIFIED,
    JOB_LINKS,
    JOB_OPERATIONS,
    Caller,
    JsonBody,
    RuntimeDep,
    errors,
    links,
)
from request_api.identity import IDENTITY_PARAMETERS, header_parameter
from request_api.queries import Pagination

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


@router.post(
    "/exports",
    status_code=201,
    responses=errors(409, 413, 422, 429) | {201: EXPORT_LINKS},
    openapi_extra=CREATE_EXTRA,
)
async def create_export(
    spec: ExportRequestSpec, caller: Caller, runtime: RuntimeDep, request: Request
) -> Any:
    """Creates an export request (authorization action ``exporter:exports:create``)."""
    answer = await commands.create_export(runtime, caller, spec, idempotency_key(request))
    return JsonBody(answer.body, status_code=answer.status_code)


@router.get("/exports", responses=ERRORS, openapi_extra=IDENTIFIED)
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


@router.post("/exports:batchGet", responses=ERRORS, openapi_extra=IDENTIFIED)
async def batch_get(body: BatchGet, caller: Caller, runtime: RuntimeDep) -> Any:
    """Up to 1000 requests by id; ids not found or not readable are listed in ``notFound``."""
    return JsonBody(await queries.batch_get(runtime, caller, body.ids))


@router.get("/exports/{export_id}", responses=ERRORS | {200: EXPORT_LINKS}, openapi_extra=IDENTIFIED)
async def get_export(export_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
    return JsonBody(await queries.get_export(runtime, caller, export_id))


@router.put(
    "/exports/{export_id}",
    responses=errors(409, 410, 413) | {200: EXPORT_LINKS},
    openapi_extra=IDENTIFIED,
)
async def update_export(export_id: str, spec: ExportRequestSpec, caller: Caller, runtime: RuntimeDep) -> Any:
    return JsonBody(await commands.update_export(runtime, caller, export_id, spec))


@router.delete("/exports/{export_id}", responses=errors(409, 410), openapi_extra=IDENTIFIED)
async def delete_export(export_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
    return JsonBody(await commands.delete_export(runtime, caller, export_id))


@router.post(
    "/exports/{export_id}/run",
    status_code=202,
    responses=errors(409, 410, 429) | {202: JOB_LINKS},
    openapi_extra=IDENTIFIED,
)
async def run_export(export_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
    return JsonBody(await commands.run_export(runtime, caller, export_id), status_code=202)


@router.get(
    "/exports/{export_id}/jobs",
    responses=ERRORS | {200: links("job_id", "/items/0/id", *JOB_OPERATIONS)},
    openapi_extra=IDENTIFIED,
)
async def list_jobs(
    export_id: str, caller: Caller, runtime: RuntimeDep, pagination: Annotated[Pagination, Query()]
) -> Any:
    return JsonBody(await queries.list_jobs(runtime, caller, export_id, pagination))

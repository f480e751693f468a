"""Seed 001's ``/data/dataExports`` (Servitly): schedule a data-export and get its details, over
the same commands and reads as ``/exports`` and ``/jobs``; the mapping is in
``request_api.seeds.servitly``. The seed has no list, cancel or delete of data-exports."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from contextlib import suppress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from exporter.contracts.base import utcnow
from exporter.contracts.job import Job
from exporter.contracts.request import ExportRequest
from exporter.domain.access import Action, Principal
from exporter.runtime import Runtime
from request_api import authorization, commands
from request_api.errors import ApiError, BadRequest, Forbidden, NotFound
from request_api.http import IDENTIFIED, Caller, ErrorBody, JsonBody, RuntimeDep, errors, links
from request_api.routers.exports import CREATE_EXTRA, idempotency_key
from request_api.seeds import servitly
from request_api.seeds.servitly import DataExportBody

MAX_TENANT = 100
log = logging.getLogger(__name__)


def _refusal(status: int, detail: str, headers: Mapping[str, str] | None) -> JsonBody:
    code, message = servitly.seed_error(status, detail)
    return JsonBody(status_code=code, content={"message": message}, headers=headers)


class ServitlyRoute(APIRoute):
    """Answers our refusals and failures in the seed's statuses and texts
    (``seeds.servitly.seed_error``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError:
                raise  # the app's 400 names the field, in the seed's shape already
            except ApiError as error:
                return _refusal(error.status_code, error.message, error.headers)
            except StarletteHTTPException as error:
                return _refusal(error.status_code, str(error.detail), error.headers)
            except Exception:
                # As the app's own 500: logged whole, answered with nothing of it.
                log.exception("%s %s failed", request.method, request.url.path)
                return _refusal(500, "", None)

        return answer


router = APIRouter(route_class=ServitlyRoute, tags=["Seed 001 (Servitly)"])
RESPONSES = errors(429) | {
    403: {"model": ErrorBody, "description": "Not authorized, or X-Servitly-Tenant not the caller's tenant"},
    429: {"model": ErrorBody, "description": f"Rate limit: {servitly.ONE_AT_A_TIME}, or the jobs quota"},
    500: {"model": ErrorBody, "description": "Internal server error"},
}


async def servitly_caller(
    caller: Caller,
    tenant: Annotated[str, Header(alias="X-Servitly-Tenant", min_length=1, max_length=MAX_TENANT)],
) -> Principal:
    """The seed names the target tenant in a header: it must be the authenticated caller's."""
    if tenant != caller.tenant:
        raise Forbidden(f"{servitly.NOT_AUTHORIZED}: X-Servitly-Tenant is not the caller's tenant")
    return caller


ServitlyCaller = Annotated[Principal, Depends(servitly_caller)]


async def _data_export(
    runtime: Runtime, caller: Principal, export_id: str
) -> tuple[ExportRequest, Job | None]:
    """A data-export the caller may read, and its run (a data-export runs once)."""
    record = await authorization.authorized(runtime, caller, export_id, Action.READ)
    if not servitly.is_data_export(record.request):
        raise NotFound(f"Data-export '{export_id}' not found")
    runs = await runtime.jobs.page_for_request(caller.tenant, export_id, 0, 1)
    job = runs[0] if runs else None
    if job is not None and not isinstance(job, Job):
        raise RuntimeError(f"job '{job.job_id}' is unreadable: {job.problem}")
    return record.request, job


@router.post(
    "/data/dataExports",
    status_code=201,
    responses=RESPONSES
    | {201: {"model": servitly.DataExport} | links("data_export_id", "/id", "get_data_export")},
    openapi_extra=CREATE_EXTRA,
)
async def create_data_export(
    body: DataExportBody, caller: ServitlyCaller, runtime: RuntimeDep, request: Request
) -> Any:
    """Schedules a data-export (seed 001): one bulk export of the tenant's at a time."""
    now = utcnow()
    if problem := servitly.date_time_problem(body, now):
        raise BadRequest(problem)
    spec = servitly.export_spec(body, now)
    answer = await commands.create_export(runtime, caller, spec, idempotency_key(request))
    export, job = await _data_export(runtime, caller, answer.body["id"])
    return JsonBody(servitly.data_export_view(export, job), status_code=201)


@router.get(
    "/data/dataExports/{data_export_id}",
    responses=RESPONSES | {200: {"model": servitly.DataExport}},
    openapi_extra=IDENTIFIED,
)
async def get_data_export(data_export_id: str, caller: ServitlyCaller, runtime: RuntimeDep) -> Any:
    """The data-export's details, with its archive's link once completed (expiring like every
    download link; ask again for a fresh one). A caller who may read but not download gets none."""
    export, job = await _data_export(runtime, caller, data_export_id)
    view = servitly.data_export_view(export, job)
    index = servitly.archive_index(job)
    url = None
    if job is not None and index is not None and export.deleted_at is None:
        with suppress(Forbidden):
            url = (await commands.download_link(runtime, caller, job.id, index)).url
    return JsonBody(view | {"url": url})

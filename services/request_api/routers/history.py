"""Seed 004's DataExportHistory at the seed's paths: the same queries and commands as ``/jobs``
(list, read, download, cancel) and ``/exports/{id}/run`` (trigger), with the seed's envelopes,
numbers and a ``trackingId`` per request (the mapping is in ``request_api.seeds.history``)."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from exporter.adapters.mongo.job_store import UnreadableJob
from exporter.contracts.job import Job
from exporter.domain.access import Action, Principal
from exporter.log_context import current_ids
from exporter.runtime import Runtime
from request_api import authorization, commands, queries
from request_api.errors import ApiError, NotFound
from request_api.http import (
    IDENTIFIED,
    Caller,
    JsonBody,
    RuntimeDep,
    describe_request_error,
    documented_errors,
)
from request_api.seeds import history

log = logging.getLogger(__name__)
PREFIX = "/DataExport"
TRACKING_HEADER = "X-Tracking-Id"
HEX_32 = re.compile(r"[0-9a-fA-F]{32}")


class HistoryRoute(APIRoute):
    """Gives each request its ``trackingId`` (in the answer, its ``X-Tracking-Id`` header and the
    log), and answers every refusal with it, at the core's status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            tracking_id = request.state.tracking_id = _tracking_id()
            try:
                response = await handler(request)
            except RequestValidationError as error:
                response = _error(tracking_id, 400, describe_request_error(error))
            except ApiError as error:
                response = _error(tracking_id, error.status_code, error.message, error.headers)
            except StarletteHTTPException as error:
                response = _error(tracking_id, error.status_code, str(error.detail), error.headers)
            response.headers[TRACKING_HEADER] = tracking_id
            log.info(
                "trackingId %s: %s %s %d", tracking_id, request.method, request.url.path, response.status_code
            )
            return response

        return answer


def _tracking_id() -> str:
    """The request's trace id (``request_ids``: in every log line and in ``X-Request-Id``)
    written as the seed's UUID; a fresh UUID when the caller's own X-Request-Id is not 32 hex
    digits (the route's log line, which carries the trace id, pairs the two)."""
    trace = current_ids().get("trace_id")
    if isinstance(trace, str) and HEX_32.fullmatch(trace):
        return str(uuid.UUID(hex=trace))
    return str(uuid.uuid4())


def _error(
    tracking_id: str, status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> JsonBody:
    return JsonBody(history.error(tracking_id, message), status_code=status_code, headers=headers)


ERRORS = documented_errors(
    history.Error,
    {
        400: "Invalid request or missing identity",
        401: "Invalid bearer token",
        403: "Not authorized",
        404: "No such entry or DataExport (or another tenant's)",
        409: "Not done (download), already ended (cancel), or a job on the same target in flight",
        410: "Expired, or its request deleted",
        429: "Maximum number of queued exports reached",
    },
)
router = APIRouter(
    prefix=PREFIX, route_class=HistoryRoute, tags=["Seed 004 (DataExportHistory)"], responses=ERRORS
)
HistoryId = Annotated[int, Path(alias="id", ge=1, le=2**53)]


def _tracking(request: Request) -> str:
    tracking_id: str = request.state.tracking_id
    return tracking_id


async def _entries(
    runtime: Runtime, caller: Principal, jobs: list[Job | UnreadableJob]
) -> list[dict[str, Any]]:
    """Our jobs as the seed's entries, numbered (a job that no longer validates is left out:
    ``GET /jobs`` shows what is wrong with it)."""
    readable = [job for job in jobs if isinstance(job, Job)]
    numbers, tenant = runtime.numbers, caller.tenant
    job_numbers = await numbers.numbers("job", tenant, [job.id for job in readable])
    request_numbers = await numbers.numbers("request", tenant, [job.request_id for job in readable])
    user_numbers = await numbers.numbers("user", tenant, [history.created_by(job) for job in readable])
    bucket = runtime.settings.storage.bucket
    return [
        history.entry(
            job,
            history.Numbers(
                job_numbers[job.id], request_numbers[job.request_id], user_numbers[history.created_by(job)]
            ),
            bucket,
        )
        for job in readable
    ]


async def _job_id(runtime: Runtime, caller: Principal, number: int) -> str:
    job_id = await runtime.numbers.id_of("job", caller.tenant, number)
    if job_id is None:
        raise NotFound(f"DataExportHistory '{number}' not found")
    return job_id


async def _entry(runtime: Runtime, caller: Principal, job_id: str) -> dict[str, Any]:
    """The entry of a job the caller may read (404 across tenants, as for ``/jobs/{id}``)."""
    job, _ = await authorization.authorized_job(runtime, caller, job_id, Action.READ)
    [entry] = await _entries(runtime, caller, [job])
    return entry


@router.get("/History/", responses={200: {"model": history.Listing}}, openapi_extra=IDENTIFIED)
async def history_all(request: Request, caller: Caller, runtime: RuntimeDep) -> Any:
    """Every entry the caller may read, latest first (up to ``ALL_HISTORY``'s page), and the count."""
    jobs, total = await queries.jobs_page(runtime, caller, queries.JobQuery(), history.ALL_HISTORY)
    assert total is not None
    return JsonBody(history.listing(_tracking(request), await _entries(runtime, caller, jobs), total))


@router.get("/History/Paged", responses={200: {"model": history.PagedListing}}, openapi_extra=IDENTIFIED)
async def history_paged(
    request: Request, caller: Caller, runtime: RuntimeDep, paging: Annotated[history.Paging, Query()]
) -> Any:
    jobs, total = await queries.jobs_page(runtime, caller, queries.JobQuery(), paging.pagination())
    entries = await _entries(runtime, caller, jobs)
    return JsonBody(history.paged(_tracking(request), paging, entries, total))


@router.get("/History/{id}", responses={200: {"model": history.Instance}}, openapi_extra=IDENTIFIED)
async def history_entry(number: HistoryId, request: Request, caller: Caller, runtime: RuntimeDep) -> Any:
    entry = await _entry(runtime, caller, await _job_id(runtime, caller, number))
    return JsonBody(history.instance(_tracking(request), entry))


@router.get(
    "/History/{id}/Download", responses={200: {"model": history.DownloadInstance}}, openapi_extra=IDENTIFIED
)
async def history_download(number: HistoryId, request: Request, caller: Caller, runtime: RuntimeDep) -> Any:
    """The entry and ``link``: a presigned URL of its (first, or archive) file, expiring after
    ``download_link_ttl_seconds`` (30 s, as the seed says); refused as ``/jobs/{id}/download``."""
    job_id = await _job_id(runtime, caller, number)
    link = await commands.download_link(runtime, caller, job_id, 0)
    entry = await _entry(runtime, caller, job_id)
    return JsonBody(history.instance(_tracking(request), entry | {"link": link.url}))


@router.post("/History/{id}/Cancel", responses={200: {"model": history.Created}}, openapi_extra=IDENTIFIED)
async def history_cancel(
    number: HistoryId,
    request: Request,
    caller: Caller,
    runtime: RuntimeDep,
    body: history.Cancel | None = None,
) -> Any:
    """Cancels a queued or running run (409 once it ended), as ``/jobs/{id}/cancel``."""
    job_id = await _job_id(runtime, caller, number)
    await commands.cancel_job(runtime, caller, job_id)
    return JsonBody(history.created(_tracking(request), [await _entry(runtime, caller, job_id)]))


@router.post("/Trigger", responses={200: {"model": history.Triggered}}, openapi_extra=IDENTIFIED)
async def history_trigger(
    body: history.Trigger, request: Request, caller: Caller, runtime: RuntimeDep
) -> Any:
    """Runs a DataExport now, as ``/exports/{id}/run``; answers with the new entry's number."""
    export = body.data_export_id
    request_id = (
        export if isinstance(export, str) else await runtime.numbers.id_of("request", caller.tenant, export)
    )
    if request_id is None:
        raise NotFound(f"DataExport '{export}' not found")
    job = await commands.run_export(runtime, caller, request_id)
    entry = await _entry(runtime, caller, job["id"])
    tracking_id = _tracking(request)
    return JsonBody({"dataExportHistoryId": entry["identity"], **history.instance(tracking_id, entry)})

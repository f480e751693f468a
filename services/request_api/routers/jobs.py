"""``/jobs``: one run of an export, its cancel and its files."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import RedirectResponse

from request_api import commands, queries
from request_api.http import (
    CONDITIONAL_READ,
    ETAG,
    IDENTIFIED,
    JOB_LINKS,
    JOB_OPERATIONS,
    NOT_MODIFIED,
    Caller,
    JsonBody,
    RuntimeDep,
    errors,
    header_doc,
    links,
    tagged,
)
from request_api.queries import JobQuery, Pagination
from request_api.responses import DownloadLink, JobPage, JobView

router = APIRouter()
LINK = header_doc("The presigned URL")


@router.get(
    "/jobs",
    response_model=JobPage,
    responses=errors() | {200: links("job_id", "/items/0/id", *JOB_OPERATIONS)},
    openapi_extra=IDENTIFIED,
)
async def list_all_jobs(
    caller: Caller,
    runtime: RuntimeDep,
    pagination: Annotated[Pagination, Query()],
    query: Annotated[JobQuery, Query()],
) -> Any:
    """The tenant's jobs the caller may read (of their requests, or granted), latest first."""
    return JsonBody(await queries.list_all_jobs(runtime, caller, query, pagination))


@router.get(
    "/jobs/{job_id}",
    response_model=JobView,
    responses=errors(403, 404) | NOT_MODIFIED | {200: JOB_LINKS | {"headers": {"ETag": ETAG}}},
    openapi_extra=CONDITIONAL_READ,
)
async def get_job(job_id: str, caller: Caller, runtime: RuntimeDep, request: Request) -> Any:
    """The job; a poller sends its ETag back in If-None-Match and gets 304 until the job moves."""
    return tagged(request, await queries.get_job(runtime, caller, job_id))


@router.post(
    "/jobs/{job_id}/cancel", response_model=JobView, responses=errors(403, 404, 409), openapi_extra=IDENTIFIED
)
async def cancel_job(job_id: str, caller: Caller, runtime: RuntimeDep) -> Any:
    return JsonBody(await commands.cancel_job(runtime, caller, job_id))


@router.get(
    "/jobs/{job_id}/download",
    response_model=DownloadLink,
    responses=errors(403, 404, 409, 410)
    | {
        200: {"description": "The link, for a caller that accepts application/json"},
        307: {"description": "Redirect to the presigned URL", "headers": {"Location": LINK}},
    },
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
                "file": link.file.to_wire(),
            }
        )
    return RedirectResponse(link.url, status_code=307)

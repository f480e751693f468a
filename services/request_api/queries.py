"""The request-api's reads: what a caller may see, in the API's shapes. The writes are in
``commands``; the access checks both share, in ``authorization``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from exporter.adapters.mongo.job_store import UnreadableJob
from exporter.adapters.mongo.jobs import JobFilter
from exporter.adapters.mongo.requests import RequestRecord
from exporter.contracts.job import Job
from exporter.contracts.request import ExportRequest
from exporter.contracts.time_bounds import IsoDateTime
from exporter.domain.access import Action, Grant, Principal
from exporter.domain.job_life import JobStatus
from exporter.runtime import Runtime
from request_api import authorization, commands
from request_api.views import job_view, request_view


class Pagination(BaseModel):
    page: int = Field(default=1, ge=1, le=100_000)
    page_size: int = Field(default=20, ge=1, le=1000, alias="pageSize")
    exclude_total_count: bool = Field(default=False, alias="excludeTotalCount")

    @property
    def skip(self) -> int:
        return (self.page - 1) * self.page_size


def paged(items: list[Any], pagination: Pagination, total: int | None) -> dict[str, Any]:
    """The paged shape of seed 004 (docs/seeds/)."""
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


async def list_exports(
    runtime: Runtime, caller: Principal, pagination: Pagination, **filters: Any
) -> dict[str, Any]:
    """A page of the requests ``caller`` may read, filtered by ``filters``."""
    where = await authorization.visible_filter(runtime, caller, **filters)
    records = await runtime.requests.page(where, pagination.skip, pagination.page_size)
    total = None if pagination.exclude_total_count else await runtime.requests.count(where)
    return paged([request_view(record) for record in records], pagination, total)


@dataclass(frozen=True, slots=True)
class Readable:
    """Requests a caller may read, and the grants that said so (for their other actions)."""

    records: list[RequestRecord]
    grants: list[Grant]

    def may(self, caller: Principal, action: Action, record: RequestRecord) -> bool:
        return authorization.decision(caller, action, record, self.grants).allowed


async def readable_requests(runtime: Runtime, caller: Principal, ids: list[str]) -> Readable:
    """The requests among ``ids`` that ``caller`` may read, once each, in the order asked."""
    wanted = list(dict.fromkeys(ids))
    records = {record.request.id: record for record in await runtime.requests.get_many(caller.tenant, wanted)}
    grants = await authorization.grants_of(runtime, caller.tenant)
    readable = Readable([], grants)
    for request_id in wanted:
        if (record := records.get(request_id)) is not None and readable.may(caller, Action.READ, record):
            readable.records.append(record)
    return readable


async def batch_get(runtime: Runtime, caller: Principal, ids: list[str]) -> dict[str, Any]:
    """The requests among ``ids`` that ``caller`` may read; the others listed in ``notFound``."""
    records = (await readable_requests(runtime, caller, ids)).records
    found = {record.request.id for record in records}
    return {
        "items": [request_view(record) for record in records],
        "notFound": [request_id for request_id in dict.fromkeys(ids) if request_id not in found],
    }


@dataclass(frozen=True, slots=True)
class LatestRun:
    """A request with its latest job (None before its first), and the caller's links to that
    job's files: none where ``/jobs/{id}/download`` would refuse them."""

    record: RequestRecord
    job: Job | UnreadableJob | None
    links: list[commands.Download]


async def latest_runs(
    runtime: Runtime,
    caller: Principal,
    ids: list[str],
    link_ttl: timedelta,
    wanted: Callable[[ExportRequest], bool],
) -> list[LatestRun]:
    """The ``wanted`` requests among ``ids`` that ``caller`` may read, in the order asked, each
    with its latest run: meant for one-time requests, which have one job unless run again."""
    readable = await readable_requests(runtime, caller, ids)
    records = [record for record in readable.records if wanted(record.request)]
    ids_wanted = [record.request.id for record in records]
    jobs = await runtime.jobs.latest_for_requests(caller.tenant, ids_wanted) if records else {}
    runs = []
    for record in records:
        job = jobs.get(record.request.id)
        links = []
        if (
            isinstance(job, Job)
            and readable.may(caller, Action.DOWNLOAD, record)
            and commands.download_refusal(job, record) is None
        ):
            links = [commands.file_link(runtime, file, link_ttl) for file in job.files]
        runs.append(LatestRun(record, job, links))
    return runs


async def get_export(runtime: Runtime, caller: Principal, export_id: str) -> dict[str, Any]:
    return request_view(await authorization.authorized(runtime, caller, export_id, Action.READ))


async def list_jobs(
    runtime: Runtime, caller: Principal, export_id: str, pagination: Pagination
) -> dict[str, Any]:
    """A page of an export's jobs, for a caller who may read the export."""
    await authorization.authorized(runtime, caller, export_id, Action.READ)
    jobs = await runtime.jobs.page_for_request(
        caller.tenant, export_id, pagination.skip, pagination.page_size
    )
    total = (
        None
        if pagination.exclude_total_count
        else await runtime.jobs.count_for_request(caller.tenant, export_id)
    )
    return paged([job_view(job) for job in jobs], pagination, total)


async def get_job(runtime: Runtime, caller: Principal, job_id: str) -> dict[str, Any]:
    job, _ = await authorization.authorized_job(runtime, caller, job_id, Action.READ)
    return job_view(job)


Id = Annotated[str, Field(min_length=1, max_length=200)]


class JobQuery(BaseModel):
    """``GET /jobs``' filters: each optional, ``from``/``to`` on ``scheduledAt`` (``to`` excluded)."""

    status: JobStatus | None = None
    request_id: Id | None = Field(default=None, alias="requestId")
    created_by: Id | None = Field(default=None, alias="createdBy")
    from_: IsoDateTime | None = Field(default=None, alias="from")
    to: IsoDateTime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> JobQuery:
        if self.from_ is not None and self.to is not None and self.to <= self.from_:
            raise ValueError("to: must be after from")
        return self


async def visible_jobs(runtime: Runtime, caller: Principal, query: JobQuery) -> JobFilter:
    """The jobs of the requests ``caller`` may read (the same rule as ``list_exports``), filtered."""
    requests = await authorization.visible_filter(runtime, caller)
    return JobFilter(
        tenant=caller.tenant,
        owners=requests.owners,
        request_ids=requests.ids,
        status=query.status,
        request_id=query.request_id,
        created_by=query.created_by,
        scheduled_from=query.from_,
        scheduled_to=query.to,
    )


async def jobs_page(
    runtime: Runtime, caller: Principal, query: JobQuery, pagination: Pagination
) -> tuple[list[Job | UnreadableJob], int | None]:
    """A page of the tenant's jobs ``caller`` may read, latest scheduled first, and their count
    (None when the caller asked to leave it out)."""
    where = await visible_jobs(runtime, caller, query)
    jobs = await runtime.jobs.page(where, pagination.skip, pagination.page_size)
    total = None if pagination.exclude_total_count else await runtime.jobs.count(where)
    return jobs, total


async def list_all_jobs(
    runtime: Runtime, caller: Principal, query: JobQuery, pagination: Pagination
) -> dict[str, Any]:
    """``GET /jobs``: tenant-wide, paged like the other lists."""
    jobs, total = await jobs_page(runtime, caller, query, pagination)
    return paged([job_view(job) for job in jobs], pagination, total)

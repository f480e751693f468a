"""The request-api's reads: what a caller may see, in the API's shapes. The writes are in
``commands``; the access checks both share, in ``authorization``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from exporter.domain.access import Action, Principal
from exporter.runtime import Runtime
from request_api import authorization
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


async def batch_get(runtime: Runtime, caller: Principal, ids: list[str]) -> dict[str, Any]:
    """The requests among ``ids`` that ``caller`` may read; the others listed in ``notFound``."""
    wanted = list(dict.fromkeys(ids))
    records = {record.request.id: record for record in await runtime.requests.get_many(caller.tenant, wanted)}
    grants = await authorization.grants_of(runtime, caller.tenant)
    readable = {
        request_id
        for request_id, record in records.items()
        if authorization.decision(caller, Action.READ, record, grants).allowed
    }
    return {
        "items": [request_view(records[request_id]) for request_id in wanted if request_id in readable],
        "notFound": [request_id for request_id in wanted if request_id not in readable],
    }


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

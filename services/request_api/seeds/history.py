"""Seed 004 (docs/seeds/004.txt, "DataExportHistory"): its entries, envelopes and paging, mapped
from our jobs. Pure functions over data; the routes are in ``routers/history.py``.

A DataExportHistory entry is one of our jobs (one run of an export request); its
``dataExportId`` is the request's. The seed names everything by numbers where we use strings:
the numbers are per tenant and given on first sight (``adapters/mongo/numbers.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from exporter.contracts.job import Job
from exporter.contracts.time_bounds import BoundedInstant
from exporter.domain.job_life import JobStatus
from request_api.queries import Pagination

# The seed's ``dataExportHistoryStatusTypeId``/``Name``: a fixed table from our job statuses.
STATUS_TYPES: dict[JobStatus, tuple[int, str]] = {
    JobStatus.NOT_PROCESSED: (1, "Queued"),
    JobStatus.IN_PROGRESS: (2, "Running"),
    JobStatus.DONE: (3, "Completed"),
    JobStatus.FAILED: (4, "Failed"),
    JobStatus.CANCELLED: (5, "Cancelled"),
    JobStatus.EXPIRED: (6, "Expired"),
    JobStatus.SKIPPED: (7, "Skipped"),
}
# Our one object store is the seed's one storage location; its name is the bucket's.
STORAGE_LOCATION_ID = 1
# ``parameters`` is the request as run, as JSON; one longer than this (a request of many items
# with long labels) is cut to its name, with where to read it whole.
MAX_PARAMETERS = 32 * 1024
# ``GET /DataExport/History/`` takes no paging: it answers the latest entries, up to our
# largest page, and the count of all of them.
ALL_HISTORY = Pagination(pageSize=1000)
Number = Annotated[int, Field(ge=1, le=2**53)]  # a JSON number every client reads exactly


class Paging(BaseModel):
    """The seed's paging parameters, bounded like our lists'."""

    page_number: int = Field(default=1, ge=1, le=100_000, alias="pageNumber")
    page_size: int = Field(default=20, ge=1, le=1000, alias="pageSize")
    exclude_total_count: bool = Field(default=False, alias="excludeTotalCount")

    def pagination(self) -> Pagination:
        return Pagination(
            page=self.page_number, pageSize=self.page_size, excludeTotalCount=self.exclude_total_count
        )


class Cancel(BaseModel):
    """The body the seed shows for a cancel: the entry's fields, which a cancel does not change
    (it is taken, and each field checked, but only the path names what to cancel)."""

    model_config = ConfigDict(alias_generator=to_camel)

    start: BoundedInstant | None = None
    complete: BoundedInstant | None = None
    data_export_history_status_type_id: Number | None = None
    storage_location_id: Number | None = None
    storage_key: Annotated[str, Field(max_length=1024)] | None = None
    export_row_count: Annotated[int, Field(ge=0, le=2**53)] | None = None
    created_by_user_id: Number | None = None
    parameters: Annotated[str, Field(max_length=MAX_PARAMETERS)] | None = None
    transfer_location_id: Number | None = None


class Trigger(BaseModel):
    """Runs a DataExport now: named by its number, or by our request id (a request that never
    ran has no number yet)."""

    data_export_id: Number | Annotated[str, Field(min_length=1, max_length=200)] = Field(alias="dataExportId")


@dataclass(frozen=True, slots=True)
class Numbers:
    """The numbers of an entry's job, request and causing user."""

    job: int
    request: int
    user: int


@dataclass(frozen=True, slots=True)
class Transfer:
    location_id: int | None = None
    location_name: str | None = None
    file_move_log_identity: int | None = None


def created_by(job: Job) -> str:
    """The user who caused the run (jobs from before ``createdBy`` existed: the owner)."""
    return job.created_by or job.owner


def transfer_of(job: Job) -> Transfer:
    """The transfer location the job's files were pushed to and its log's number, from the
    job's ``transfer`` record if it has one; all None until transfer locations exist."""
    record = (job.model_extra or {}).get("transfer")
    if not isinstance(record, dict):
        return Transfer()

    def number(name: str) -> int | None:
        value = record.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    name = record.get("locationName")
    return Transfer(number("locationNumber"), name if isinstance(name, str) else None, number("logNumber"))


def instant(value: datetime | None) -> str | None:
    """ISO 8601 to the millisecond, in UTC, as the seed writes it."""
    return None if value is None else value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parameters(job: Job) -> str:
    """The request as the job ran it, as JSON (cut as ``MAX_PARAMETERS`` says)."""
    request = (job.spec or {}).get("request")
    text = pydantic_core.to_json(request).decode()
    if len(text) <= MAX_PARAMETERS:
        return text
    name = request.get("name") if isinstance(request, dict) else None
    return pydantic_core.to_json({"name": name, "truncated": True, "whole": f"/jobs/{job.id}"}).decode()


def entry(job: Job, numbers: Numbers, storage_location: str) -> dict[str, Any]:
    """One DataExportHistory object, every field the seed shows."""
    status_id, status_name = STATUS_TYPES[job.status]
    transfer = transfer_of(job)
    request = (job.spec or {}).get("request")
    name = request.get("name") if isinstance(request, dict) else None
    return {
        "identity": numbers.job,
        "dataExportId": numbers.request,
        "dataExportName": name or job.request_id,  # the seed's name is never empty; ours may be
        "created": instant(job.created_at),
        "start": instant(job.started_at),
        "complete": instant(job.completed_at),
        "dataExportHistoryStatusTypeId": status_id,
        "dataExportHistoryStatusTypeName": status_name,
        "storageLocationId": STORAGE_LOCATION_ID,
        "storageLocationName": job.bucket or storage_location,
        "storageKey": job.files[0].key if job.files else None,
        "exportRowCount": job.row_count,
        "createdByUserId": numbers.user,
        "createdByUserName": created_by(job),
        "parameters": parameters(job),
        "transferLocationId": transfer.location_id,
        "transferLocationName": transfer.location_name,
        "fileMoveLogIdentity": transfer.file_move_log_identity,
    }


def _results(entries: list[dict[str, Any]], total: int | None) -> dict[str, Any]:
    return {"items": entries} if total is None else {"totalCount": total, "items": entries}


def listing(tracking_id: str, entries: list[dict[str, Any]], total: int) -> dict[str, Any]:
    return {"trackingId": tracking_id, **_results(entries, total)}


Entries = list[dict[str, Any]]


def paged(tracking_id: str, paging: Paging, entries: Entries, total: int | None) -> dict[str, Any]:
    """``total`` None (``excludeTotalCount``): ``pagedResults`` has no ``totalCount``."""
    return {
        "trackingId": tracking_id,
        "pagination": {
            "pageNumber": paging.page_number,
            "pageSize": paging.page_size,
            "excludeTotalCount": paging.exclude_total_count,
        },
        "pagedResults": _results(entries, total),
    }


def instance(tracking_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {"trackingId": tracking_id, "instance": entry}


def created(tracking_id: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The seed's answer to a POST that makes something (a cancel): ``type`` ``create``."""
    return {"trackingId": tracking_id, "type": "create", "results": _results(entries, len(entries))}


class Answer(BaseModel):
    """The seed's answers, as the OpenAPI document shows them (the handlers build the dicts;
    the tests validate those against these)."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", populate_by_name=True)


class Entry(Answer):
    identity: int
    data_export_id: int
    data_export_name: str
    created: str
    start: str | None
    complete: str | None
    data_export_history_status_type_id: int
    data_export_history_status_type_name: str
    storage_location_id: int
    storage_location_name: str
    storage_key: str | None
    export_row_count: int
    created_by_user_id: int
    created_by_user_name: str
    parameters: str
    transfer_location_id: int | None
    transfer_location_name: str | None
    file_move_log_identity: int | None


class DownloadEntry(Entry):
    link: str


class Results(Answer):
    total_count: int | None = None
    items: list[Entry]


class PagingEcho(Answer):
    page_number: int
    page_size: int
    exclude_total_count: bool


class Listing(Results):
    tracking_id: str


class PagedListing(Answer):
    tracking_id: str
    pagination: PagingEcho
    paged_results: Results


class Instance(Answer):
    tracking_id: str
    instance: Entry


class DownloadInstance(Answer):
    tracking_id: str
    instance: DownloadEntry


class Created(Answer):
    tracking_id: str
    type: Literal["create"]
    results: Results


class Triggered(Instance):
    data_export_history_id: int


class Error(BaseModel):
    """The seed shows no error body: ours (``message``) with the request's ``trackingId``."""

    tracking_id: str = Field(alias="trackingId")
    message: str


def error(tracking_id: str, message: str) -> dict[str, Any]:
    return Error(trackingId=tracking_id, message=message).model_dump(by_alias=True)

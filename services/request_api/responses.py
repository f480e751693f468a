"""The request-api's answers as OpenAPI shows them. Handlers answer ``views``' dicts themselves
(see ``JsonBody``), so these models only document: each is built from the contract it shows,
less what ``views`` hides, so the two cannot drift apart; examples are real views of seed 000.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.alias_generators import to_camel

from exporter.adapters.mongo.requests import RequestRecord, RequestStatus
from exporter.contracts.base import UtcDatetime, WireModel
from exporter.contracts.job import Delivery, Job, JobFile, Window, job_id_for
from exporter.contracts.request import EXAMPLE_REQUEST, ExportRequest, ExportRequestSpec
from exporter.domain.job_life import JobStatus
from request_api.views import HIDDEN_DELIVERY_FIELDS, HIDDEN_JOB_FIELDS, job_view, request_view

M = TypeVar("M", bound=BaseModel)


def shown(
    name: str, source: type[BaseModel], hidden: set[str], examples: list[Any] | None = None, **fields: Any
) -> type[BaseModel]:
    """``source`` less its ``hidden`` fields (by wire name), with ``fields`` added or replaced."""
    kept: dict[str, Any] = {
        field: (info.annotation, info)
        for field, info in source.model_fields.items()
        if (info.alias or field) not in hidden and field not in fields
    }
    config = source.model_config | (ConfigDict(json_schema_extra={"examples": examples}) if examples else {})
    return create_model(name, __config__=config, **kept, **fields)


class View(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def _example_request() -> dict[str, Any]:
    created = datetime(2026, 1, 31, 8, 0, tzinfo=UTC)
    spec = ExportRequestSpec.model_validate(EXAMPLE_REQUEST)
    stored = spec.stored(
        request_id="01JJQ7ZC4X6N2T3V5W8Y9A0BCD",
        tenant="acme",
        owner="alice",
        version=1,
        created_at=created,
        updated_at=created,
    )
    return request_view(RequestRecord(stored, datetime(2026, 2, 1, tzinfo=UTC), None))


EXAMPLE_VIEW = _example_request()


class ExportRequestView(ExportRequest):
    """An export request (seed 000's ``201`` body), with its schedule."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_VIEW]})

    status: RequestStatus
    # Always answered, null before the first run; not "required" only because FastAPI's document
    # drops nulls from the examples.
    last_run_at: UtcDatetime | None = None
    paused_at: UtcDatetime | None = Field(default=None, description="Only while paused")
    paused_reason: str | None = Field(default=None, description="Only while paused")
    next_run_times: list[UtcDatetime] = Field(description="The next runs, at most 5; none once deleted")


DeliveryView = shown("DeliveryView", Delivery, HIDDEN_DELIVERY_FIELDS)


class JobParameters(WireModel):
    request: ExportRequestSpec | None
    windows: list[Window] | None


def _example_job() -> dict[str, Any]:
    """A done run of the example request, with its file and its sent email (seed 004's history)."""
    request, at = EXAMPLE_VIEW, datetime(2026, 2, 1, tzinfo=UTC)
    window = Window.model_validate({"item": 0, "from": at - timedelta(days=1), "to": at, "by": "arrival"})
    spec = {
        "request": ExportRequestSpec.model_validate(EXAMPLE_REQUEST).to_wire(),
        "windows": [window.to_wire()],
    }
    name = "daily-temperatures-20260201.csv"
    file = JobFile(
        key=f"acme/{request['id']}/{name}",
        name=name,
        size_in_bytes=5320,
        rows=96,
        checksum="sha256:5c9d4f1ad2b0e8e53bfb1e1f06c4bf5d1f8c9a7e3d2b6a4c8e0f1a2b3c4d5e6f",
        content_type="text/csv",
    )
    delivery = Delivery(
        index=0, medium="email", policy="always", status="sent", attempts=1, sent_to=["ops@example.com"]
    )
    job = Job(
        id=job_id_for(request["id"], at),
        request_id=request["id"],
        request_version=1,
        tenant="acme",
        owner="alice",
        scheduled_at=at,
        status=JobStatus.DONE,
        spec=spec,
        created_at=at,
        completed_at=at,
        files=[file],
        row_count=96,
        size_in_bytes=5320,
        notifications=[delivery],
    )
    return job_view(job)


JobView = shown(
    "JobView",
    Job,
    HIDDEN_JOB_FIELDS - {"id"},
    notifications=(list[DeliveryView], Field(default_factory=list)),  # type: ignore[valid-type]
    parameters=(JobParameters, ...),
    examples=[_example_job()],
)
JobView.__doc__ = "One run of an export request (seed 004's DataExportHistory): status, files, deliveries."


class UnreadableJobView(View):
    """A stored job that no longer validates, listed by its id and what is wrong with it."""

    id: str
    problem: str


class PageInfo(View):
    page_number: int
    page_size: int
    exclude_total_count: bool


class Page(View, Generic[M]):
    """Seed 004's paged list."""

    pagination: PageInfo
    items: list[M]
    total_count: int | None = Field(default=None, description="Absent with excludeTotalCount=true")


class RequestPage(Page[ExportRequestView]):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "pagination": {"pageNumber": 1, "pageSize": 20, "excludeTotalCount": False},
                    "items": [EXAMPLE_VIEW],
                    "totalCount": 1,
                }
            ]
        }
    )


class JobPage(Page[JobView | UnreadableJobView]):  # type: ignore[valid-type]
    """Seed 004's paged list of an export's jobs."""


class BatchAnswer(View):
    items: list[ExportRequestView]
    not_found: list[str] = Field(description="Ids not found, or not readable by the caller")


class DownloadLink(View):
    """A presigned link that expires soon (seed 004: 30 s)."""

    url: str
    expires_at: datetime
    file: JobFile


class VersionInfo(View):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"service": "exporter", "version": "0.1.0", "apiVersion": "1.0.0", "commit": "7b6e296"}
            ]
        }
    )

    service: str
    version: str = Field(description="The installed package's version")
    api_version: str = Field(description="The version of this OpenAPI document")
    commit: str | None = Field(description="The git commit built, when the build said so")

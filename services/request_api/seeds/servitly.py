"""Seed 001 (Servitly's ``POST /data/dataExports``): its flat data-export bean mapped to our
export request and back, and our refusals in its error vocabulary. Plain functions over data: the
routes (``request_api.routers.servitly``) call the same commands and reads as ``/exports``.

A data-export is a one-time request of thing selections (CSV files zipped into one archive).
Each distinct qualifier of ``qualifiedMetricIds`` (product model and part, or thing definition)
becomes one selection of things with that qualifier's metrics, so the filters run against the
things the ingestor keeps; no qualified metric means every metric of each thing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from exporter.contracts.filename_masks import THING_FILE_MASK, filename_mask
from exporter.contracts.job import Job
from exporter.contracts.request import (
    ExportRequest,
    ExportRequestSpec,
    ExportType,
    Format,
    Item,
    ThingSelection,
    TimestampFormat,
)
from exporter.contracts.thing_filters import MetricName, Qualifier, ThingFilters, ThingQualifier
from exporter.contracts.time_bounds import LATEST_EPOCH_MS
from exporter.domain.job_life import JobStatus
from request_api.identity import MISSING_IDENTITY

State = Literal["PENDING", "COMPLETED", "ERROR"]
MAX_QUALIFIED_METRICS = 100
# How far ahead of our clock a client's ``dateTime`` may be and still mean "now".
MAX_CLOCK_SKEW_MS = 60_000
EpochMillis = Annotated[int, Field(ge=0, le=LATEST_EPOCH_MS, strict=True)]
# Each status of a data-export's run as the seed's state: an expired run did complete (its
# archive is gone since, after the retention).
STATES: dict[JobStatus, State] = {
    JobStatus.NOT_PROCESSED: "PENDING",
    JobStatus.IN_PROGRESS: "PENDING",
    JobStatus.DONE: "COMPLETED",
    JobStatus.EXPIRED: "COMPLETED",
    JobStatus.FAILED: "ERROR",
    JobStatus.CANCELLED: "ERROR",
    JobStatus.SKIPPED: "ERROR",
}
# The seed's example message of each status it lists.
NOT_AUTHENTICATED = "User not authenticated"
NOT_AUTHORIZED = "User not authorized"
RATE_LIMITED = "API call rate limit exeeded"  # sic: the seed's spelling, which clients may match
INTERNAL = "Internal Server Error"
ONE_AT_A_TIME = "only one bulk export can be scheduled at a time"

QUALIFIER_FIELDS = {
    "productModelId": "product_model_id",
    "productModelPartId": "product_model_part_id",
    "thingDefinitionId": "thing_definition_id",
}


class QualifiedMetricId(ThingQualifier):
    metric_id: MetricName


class DataExportBody(ThingFilters):
    """The seed's request body, every field as it is written there. ``productModelId``,
    ``productModelPartId`` and ``thingDefinitionId`` may also stand beside the metrics (the
    issue lists them flat): there they narrow every metric's things."""

    name: Annotated[str, Field(max_length=200)] | None = None
    date_time: EpochMillis | None = None
    thing_file_name: str | None = None
    hash_thing_file_name: bool = False
    qualified_metric_ids: Annotated[list[QualifiedMetricId], Field(max_length=MAX_QUALIFIED_METRICS)] = Field(
        default_factory=list
    )
    start_timestamp: EpochMillis | None = None
    end_timestamp: EpochMillis | None = None
    include_unit: bool = False
    timestamp_format: TimestampFormat = "ISO_8601"

    @field_validator("thing_file_name")
    @classmethod
    def _mask(cls, value: str | None) -> str | None:
        return None if value is None else filename_mask(value)

    @field_validator("qualified_metric_ids")
    @classmethod
    def _unique(cls, metrics: list[QualifiedMetricId]) -> list[QualifiedMetricId]:
        if len(set(metrics)) != len(metrics):
            raise ValueError("each qualified metric may be named once")
        return metrics

    @model_validator(mode="after")
    def _window_order(self) -> DataExportBody:
        start, end = self.start_timestamp, self.end_timestamp
        if start is not None and end is not None and start >= end:
            raise ValueError("'startTimestamp' must be before 'endTimestamp'")
        return self

    @model_validator(mode="after")
    def _qualifiers_agree(self) -> DataExportBody:
        """A metric qualified otherwise than the body's own filter could match no thing."""
        for index, metric in enumerate(self.qualified_metric_ids):
            for name, field in QUALIFIER_FIELDS.items():
                own, outer = getattr(metric, field), getattr(self, field)
                if own is not None and outer is not None and own != outer:
                    raise ValueError(f"qualifiedMetricIds.{index}.{name}: the body's {name} is '{outer}'")
        return self

    def qualified(self) -> dict[Qualifier, list[str]]:
        """The metric names of each qualifier, the body's filters filling what a metric leaves
        out; in the order first named."""
        outer = self.qualifier
        groups: dict[Qualifier, list[str]] = {}
        for metric in self.qualified_metric_ids:
            own = metric.qualifier
            key = (own[0] or outer[0], own[1] or outer[1], own[2] or outer[2])
            names = groups.setdefault(key, [])
            if metric.metric_id not in names:
                names.append(metric.metric_id)
        return groups or {outer: []}


class DataExport(DataExportBody):
    """The seed's data-export bean as answered: the body's fields, its id and state, and the
    archive's ``url`` (details only). It documents the answer; ``data_export_view`` builds it."""

    id: str
    state: State
    url: str | None = None


def _instant(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def export_spec(body: DataExportBody, now: datetime) -> ExportRequestSpec:
    """Our one-time request for a data-export. ``dateTime`` is when it was scheduled: it runs at
    once (a time past, or ahead by at most the clock skew, is kept as the request's start)."""
    items = [
        Item(
            things=ThingSelection.model_validate(
                {
                    "from": body.start_timestamp or 0,
                    "to": body.end_timestamp or 0,
                    **body.model_dump(include=set(ThingFilters.model_fields)),
                    "product_model_id": model,
                    "product_model_part_id": part,
                    "thing_definition_id": definition,
                    "metrics": metrics,
                }
            )
        )
        for (model, part, definition), metrics in body.qualified().items()
    ]
    start_at = None if body.date_time is None else min(_instant(body.date_time), now)
    return ExportRequestSpec(
        name=body.name,
        type=ExportType.ONE_TIME,
        start_at=start_at,
        format=Format(
            extension="csv",
            timestamp_format=body.timestamp_format,
            include_unit=body.include_unit,
            filename_mask=body.thing_file_name,
            hash_filenames=body.hash_thing_file_name,
            archive=True,
        ),
        items=items,
    )


def date_time_problem(body: DataExportBody, now: datetime) -> str | None:
    """Why ``dateTime`` cannot be taken: a data-export runs when it is scheduled, not later."""
    if body.date_time is not None and body.date_time > _epoch_ms(now) + MAX_CLOCK_SKEW_MS:
        return "dateTime: a data-export runs when it is scheduled; it cannot be scheduled ahead"
    return None


def is_data_export(request: ExportRequest) -> bool:
    """Whether the seed can show ``request``: a one-time request of thing selections only."""
    return request.type is ExportType.ONE_TIME and all(item.things is not None for item in request.items)


def state_of(job: Job | None) -> State:
    """A data-export not yet queued is pending like one queued."""
    return "PENDING" if job is None else STATES[job.status]


def archive_index(job: Job | None) -> int | None:
    """Which of a completed run's files is its zip archive (a thing export always makes one)."""
    if job is None or job.status is not JobStatus.DONE:
        return None
    return next((i for i, file in enumerate(job.files) if file.content_type == "application/zip"), None)


def _shared(selections: list[ThingSelection], field: str) -> str | None:
    """The body-level filter: the value every selection has, else none."""
    values = {getattr(selection, field) for selection in selections}
    return values.pop() if len(values) == 1 else None


def data_export_view(request: ExportRequest, job: Job | None) -> dict[str, Any]:
    """The seed's data-export bean of one of our requests and its run, every field present."""
    selections = [item.things for item in request.items if item.things is not None]
    first = selections[0]
    fmt = request.format
    qualified = [
        {"metricId": metric} | {name: getattr(selection, field) for name, field in QUALIFIER_FIELDS.items()}
        for selection in selections
        for metric in selection.metrics
    ]
    shared = {name: _shared(selections, field) for name, field in QUALIFIER_FIELDS.items()}
    return {
        "id": request.id,
        "name": request.name,
        "dateTime": _epoch_ms(request.start_at or request.created_at),
        "thingFileName": fmt.filename_mask or THING_FILE_MASK,
        "hashThingFileName": fmt.hash_filenames,
        "state": state_of(job),
        "customerId": first.customer_id,
        "locationId": first.location_id,
        "thingId": first.thing_id,
        **shared,
        "qualifiedMetricIds": qualified,
        "startTimestamp": first.from_ or None,
        "endTimestamp": first.to or None,
        "includeUnit": fmt.include_unit,
        "timestampFormat": fmt.timestamp_format,
    }


def seed_error(status: int, detail: str) -> tuple[int, str]:
    """Our refusal as the seed lists them (401/403/429/500 with its example texts first; a 400
    names the field): a target in flight, our 409, is its "one bulk export at a time", which a
    client retries later like a rate limit (the seed's list has no 409)."""
    if status == 401 or (status == 400 and detail == MISSING_IDENTITY):
        return 401, NOT_AUTHENTICATED
    if status == 403:
        return 403, detail if detail.startswith(NOT_AUTHORIZED) else f"{NOT_AUTHORIZED}: {detail}"
    if status == 409:
        return 429, f"{RATE_LIMITED}: {ONE_AT_A_TIME} ({detail})"
    if status == 429:
        return 429, f"{RATE_LIMITED}: {detail}"
    if status >= 500:
        return 500, INTERNAL
    return status, detail

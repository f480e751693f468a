"""A job: one run of an export request, with everything the renderer needs and what it produced."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from exporter.contracts.base import UtcDatetime, WireModel
from exporter.contracts.request import ExportRequestSpec
from exporter.domain.job_life import JobStatus


class Window(WireModel):
    """The resolved range of one item, fixed when the job fires; ``None`` is an open end.

    ``by``: ``time`` takes the readings measured in ``[from, to)``; ``arrival`` those stored in
    it, whenever they were measured: a recurring export's runs, so that a late reading goes out
    with the next run instead of never.
    """

    item: Annotated[int, Field(ge=0)]
    from_: Annotated[UtcDatetime | None, Field(alias="from")] = None
    to: UtcDatetime | None = None
    by: Literal["time", "arrival"] = "time"


class JobSpec(WireModel):
    """The complete job as published on ``export.requested``: the renderer needs nothing else."""

    job_id: str
    request_id: str
    request_version: int
    tenant: str
    owner: str
    scheduled_at: UtcDatetime
    request: ExportRequestSpec
    windows: list[Window]


class JobFile(WireModel):
    key: str
    name: str
    size_in_bytes: Annotated[int, Field(ge=0)]
    rows: Annotated[int, Field(ge=0)]
    checksum: str
    content_type: str


class JobResult(WireModel):
    """What a finished render produced: the part of ``export.completed`` the job keeps."""

    status: JobStatus
    bucket: str | None = None
    files: list[JobFile] = Field(default_factory=list)
    row_count: Annotated[int, Field(ge=0)] = 0
    size_in_bytes: Annotated[int, Field(ge=0)] = 0
    error: str | None = None
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None


def job_id_for(request_id: str, scheduled_at: UtcDatetime) -> str:
    """Deterministic: the same request and scheduled time always name the same job."""
    return f"{request_id}-{scheduled_at.strftime('%Y%m%dT%H%M%S')}{scheduled_at.microsecond // 1000:03d}Z"

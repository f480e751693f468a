"""A job: one run of an export request, with everything the renderer needs and what it produced."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from exporter.contracts.base import UtcDatetime, WireModel
from exporter.contracts.notification import NotificationMedium, NotificationPolicy
from exporter.contracts.request import ExportRequestSpec
from exporter.domain.job_life import DeliveryStatus, JobStatus


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


Count = Annotated[int, Field(ge=0)]


class Stored(WireModel):
    """A part of a stored job, read back: a field this version does not know (another version
    wrote it) is kept, so the API still shows it and a compare-and-set on the part still matches.

    Its fields are declared in the order the writes add them to the document (``to_stored`` gives
    that order back, and only the fields the document has).
    """

    model_config = ConfigDict(extra="allow")

    def to_stored(self) -> dict[str, Any]:
        """The part as the document holds it: the same fields, in the same order."""
        return self.model_dump(mode="python", by_alias=True, exclude_unset=True)


class Refusal(Stored):
    recipient: str
    reason: str


class Delivery(Stored):
    """One notification message's delivery, kept on the job (see ``job_life.DeliveryStatus``)."""

    index: Count
    medium: NotificationMedium
    policy: NotificationPolicy
    status: DeliveryStatus
    attempts: Count
    last_error: str | None = None
    updated_at: UtcDatetime | None = None
    # The idempotency key of the claim, and when the claim counts as cut off.
    key: str | None = None
    lease_until: UtcDatetime | None = None
    next_attempt_at: UtcDatetime | None = None
    recipients: list[str] = Field(default_factory=list)
    sent_to: list[str] = Field(default_factory=list)
    refused: list[Refusal] = Field(default_factory=list)
    detail: str | None = None
    sent_at: UtcDatetime | None = None


class JobProgress(Stored):
    rows: Count = 0


class Job(Stored):
    """A stored job: one run of a request, its status, what it produced and its deliveries.

    ``spec`` stays as stored (the ``JobSpec`` the job was published with): it is validated where
    it is used, so a job whose spec is damaged can still be read, shown and failed.
    """

    id: str
    request_id: str
    request_version: int = 0
    tenant: str
    owner: str
    created_by: str | None = None
    scheduled_at: UtcDatetime
    status: JobStatus
    spec: dict[str, Any] | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime | None = None
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    progress: JobProgress = Field(default_factory=JobProgress)
    bucket: str | None = None
    files: list[JobFile] = Field(default_factory=list)
    row_count: Count = 0
    size_in_bytes: Count = 0
    error: str | None = None
    notifications: list[Delivery] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    lease_until: UtcDatetime | None = None
    attempts: Count = 0
    # How often the scheduler's sweep announced it again, no renderer having started it.
    announcements: Count = 0
    expired_at: UtcDatetime | None = None

    @property
    def result(self) -> JobResult:
        """What the job's run produced, as ``export.completed`` tells it."""
        return JobResult(
            status=self.status,
            bucket=self.bucket,
            files=self.files,
            row_count=self.row_count,
            size_in_bytes=self.size_in_bytes,
            error=self.error,
            started_at=self.started_at,
            completed_at=self.completed_at,
        )


def job_id_for(request_id: str, scheduled_at: UtcDatetime) -> str:
    """Deterministic: the same request and scheduled time always name the same job."""
    return f"{request_id}-{scheduled_at.strftime('%Y%m%dT%H%M%S')}{scheduled_at.microsecond // 1000:03d}Z"

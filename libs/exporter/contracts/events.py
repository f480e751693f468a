"""Every event on Kafka: one envelope type, a CloudEvents 1.0 event, and one model per event.

Events travel in CloudEvents' structured content mode: the value is the whole event in its JSON
format, under ``CLOUDEVENTS_CONTENT_TYPE``. Not the binary mode (attributes in ``ce_*`` headers),
because our signature (``exporter.signing``) covers the value bytes only: in headers, a type,
tenant or source could be altered without breaking it. ``tenant`` and ``actor`` are extension
attributes. Upstream producers may still send ingest payloads bare (``ingestor.decoding``).

Event ids are deterministic where the event stands for a state change (a job's completion, a
request's version), so a republished event carries the same id and consumers can drop it.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import Field, model_validator

from exporter.contracts.base import UtcDatetime, WireModel, utcnow
from exporter.contracts.ingest import Entity, MeasurementPack, Thing
from exporter.contracts.job import JobFile, JobResult, JobSpec
from exporter.domain.job_life import JobStatus

DataT = TypeVar("DataT", bound=WireModel)
# The Kafka ``content-type`` header of every event we publish (CloudEvents' Kafka binding).
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
Tenant = Annotated[str, Field(min_length=1, max_length=100)]


class Envelope(WireModel, Generic[DataT]):
    specversion: Literal["1.0"] = "1.0"
    id: Annotated[str, Field(min_length=1, max_length=300)]
    type: str
    source: str
    time: UtcDatetime = Field(default_factory=utcnow)
    subject: str | None = None
    tenant: Tenant
    actor: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: DataT

    def to_wire(self) -> dict[str, Any]:
        """CloudEvents has no null attributes (its SDKs refuse one): an unset one is left out."""
        wire = super().to_wire()
        return {name: value for name, value in wire.items() if value is not None or name == "data"}


def same_tenant(envelope: Envelope[Any], data_tenant: str) -> None:
    """An event's data may not name another tenant than its envelope: producers are trusted per
    tenant by the envelope's (``exporter.signing``)."""
    if data_tenant != envelope.tenant:
        raise ValueError(f"data.tenant '{data_tenant}' differs from the envelope's '{envelope.tenant}'")


class ExportRequested(Envelope[JobSpec]):
    type: Literal["exporter.export.requested.v1"] = "exporter.export.requested.v1"

    @model_validator(mode="after")
    def _one_tenant(self) -> ExportRequested:
        same_tenant(self, self.data.tenant)
        return self


# Files an ``export.completed`` lists at most. About 300 bytes each, so the event stays far below
# Kafka's 1 MiB message limit (which a list of every file passed at about 3,300); the job keeps
# them all (``GET /jobs/{jobId}``), and the notifier reads them there.
EVENT_FILES = 100


class ExportCompletedData(WireModel):
    """``files``: the first ``EVENT_FILES`` of the job's ``file_count``; ``files_truncated`` says
    that the rest are on the job only. Events from before these two fields listed every file,
    and still validate: their count is their list's length."""

    job_id: str
    request_id: str
    status: JobStatus
    bucket: str | None = None
    files: list[JobFile] = Field(default_factory=list)
    file_count: Annotated[int, Field(ge=0)] = 0
    files_truncated: bool = False
    row_count: int = 0
    size_in_bytes: int = 0
    error: str | None = None
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _count_listed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "fileCount" not in data and "file_count" not in data:
            return {**data, "fileCount": len(data.get("files") or ())}
        return data

    @classmethod
    def from_result(cls, job_id: str, request_id: str, result: JobResult) -> ExportCompletedData:
        fields = result.model_dump()
        files = fields.pop("files")
        return cls(
            job_id=job_id,
            request_id=request_id,
            files=files[:EVENT_FILES],
            file_count=len(files),
            files_truncated=len(files) > EVENT_FILES,
            **fields,
        )


class ExportCompleted(Envelope[ExportCompletedData]):
    type: Literal["exporter.export.completed.v1"] = "exporter.export.completed.v1"


# "pause": the scheduler stopped a request whose runs could not be planned (see scheduler.firing).
IamAction = Literal["create", "update", "delete", "run", "cancel", "pause"]


class IamPolicyUpdatedData(WireModel):
    action: IamAction
    resource: str
    owner: str
    tenant: str
    actor: str
    version: int
    time: UtcDatetime


class IamPolicyUpdated(Envelope[IamPolicyUpdatedData]):
    type: Literal["exporter.service_layer.iam.policy-updated.v1"] = (
        "exporter.service_layer.iam.policy-updated.v1"
    )


Subject = Annotated[str, Field(pattern=r"^(user|role):\S{1,200}$")]
GrantAction = Literal[
    "exporter:exports:create",
    "exporter:exports:read",
    "exporter:exports:update",
    "exporter:exports:notify",
    "exporter:exports:delete",
    "exporter:exports:run",
    "exporter:exports:download",
    "exporter:exports:cancel",
]


class GrantChangedData(WireModel):
    """A grant as the IAM service holds it now; ``revoked`` ends it. ``version`` orders the
    changes of one grant, so a late or repeated event never undoes a newer one."""

    grant_id: Annotated[str, Field(min_length=1, max_length=200)]
    tenant: Tenant
    subjects: Annotated[list[Subject], Field(min_length=1, max_length=1000)]
    actions: Annotated[list[GrantAction], Field(min_length=1)]
    # "*": every request of the tenant; otherwise one request id.
    resource: Annotated[str, Field(min_length=1, max_length=200)] = "*"
    revoked: bool = False
    version: Annotated[int, Field(ge=1)]


class GrantChanged(Envelope[GrantChangedData]):
    """Published by the IAM service on ``iam.policy-updated``, beside the request-api's events."""

    type: Literal["iam.grant.changed.v1"] = "iam.grant.changed.v1"

    @model_validator(mode="after")
    def _one_tenant(self) -> GrantChanged:
        same_tenant(self, self.data.tenant)
        return self


# What the iam.policy-updated topic carries: the request-api's announcements and the IAM's grants.
PolicyStreamEvent = Annotated[IamPolicyUpdated | GrantChanged, Field(discriminator="type")]


class MeasurementsPublished(Envelope[MeasurementPack]):
    """SenML-like measurements on ``messages``; the ingestor stores them (contracts/ingest.py)."""

    type: Literal["exporter.measurements.v1"] = "exporter.measurements.v1"


class ThingUpdated(Envelope[Thing]):
    """Thing metadata on ``things``: upserted unless a newer version is stored."""

    type: Literal["exporter.thing.updated.v1"] = "exporter.thing.updated.v1"


class EntityUpdated(Envelope[Entity]):
    """A business entity on ``entities``: upserted unless a newer version is stored."""

    type: Literal["exporter.entity.updated.v1"] = "exporter.entity.updated.v1"

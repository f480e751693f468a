"""Seed 003 (docs/seeds/003.txt, Mews Connector API "Exports"): its bodies, answers and errors,
mapped to and from ours. Pure functions over data; the routes are in ``routers/mews.py``.

A Mews export is one of our one-time export requests of one entity type as plain JSON Lines; its
``Id`` is the request's id written as a UUID, and its state is that of the request's latest job.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_pascal

from exporter.adapters.mongo.job_store import UnreadableJob
from exporter.contracts.job import Job
from exporter.contracts.request import ExportRequest, ExportRequestSpec, ExportType
from exporter.domain.access import Principal
from exporter.domain.job_life import JobStatus
from exporter.rendering.archive import CONTENT_TYPE as ZIP_CONTENT_TYPE
from exporter.settings.mews import MewsClientSettings, token_hash
from request_api.commands import Download

EntityType = Literal[
    "OrderItem",
    "Payment",
    "Reservation",
    "Customer",
    "Company",
    "Bill",
    "AvailabilityAdjustment",
    "AvailabilityBlock",
    "ResourceBlock",
]
ENTITY_TYPES: frozenset[str] = frozenset(get_args(EntityType))
ExportStatus = Literal["Pending", "Processing", "Success", "Failed", "Expired"]
MAX_EXPORT_IDS = 1000

# Failed, cancelled and skipped runs all ended without files: Mews has one word for that.
STATUSES: dict[JobStatus, ExportStatus] = {
    JobStatus.NOT_PROCESSED: "Pending",
    JobStatus.IN_PROGRESS: "Processing",
    JobStatus.DONE: "Success",
    JobStatus.FAILED: "Failed",
    JobStatus.CANCELLED: "Failed",
    JobStatus.SKIPPED: "Failed",
    JobStatus.EXPIRED: "Expired",
}


class MewsModel(BaseModel):
    """PascalCase on the wire; fields Mews clients add (``LanguageCode``, ``EnterpriseIds`` …)
    are ignored, as Mews' own API does for operations that do not use them."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, frozen=True)


Token = Annotated[SecretStr, Field(min_length=1, max_length=200)]


class Credentials(MewsModel):
    """What every Mews request carries; the tokens are secrets, kept out of reprs and logs."""

    client_token: Token
    access_token: Token
    client: Annotated[str, Field(min_length=1, max_length=150)]


class AddExport(Credentials):
    entity_type: EntityType


class GetAllExports(Credentials):
    export_ids: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=MAX_EXPORT_IDS)
    ]


class ExportFile(MewsModel):
    url: str
    size_in_bytes: int


class Export(MewsModel):
    id: str
    status: ExportStatus
    entity_type: str
    files: list[ExportFile]
    expires_utc: str | None


class AddedExport(MewsModel):
    export: Export


class Exports(MewsModel):
    exports: list[Export]


class MewsError(MewsModel):
    message: str
    request_id: str
    details: str | None = None


def principal_for(
    clients: list[MewsClientSettings], client_token: SecretStr, access_token: SecretStr
) -> Principal | None:
    """The identity configured for the token pair, or None. Tokens are compared as hashes in
    constant time, every entry compared, so the time taken tells nothing of a near miss."""
    access = token_hash(access_token.get_secret_value())
    client = token_hash(client_token.get_secret_value())
    found = None
    for entry in clients:
        access_ok = hmac.compare_digest(entry.access_token_sha256, access)
        expected_client = entry.client_token_sha256
        client_ok = expected_client is None or hmac.compare_digest(expected_client, client)
        if access_ok and client_ok:
            found = entry
    if found is None:
        return None
    return Principal(user=found.user, tenant=found.tenant, roles=frozenset(found.roles))


def export_spec(body: AddExport) -> ExportRequestSpec:
    """``exports/add`` as our request: every entity of the type, now, as plain JSON Lines; the
    name records which client asked (seed 003's ``Client``)."""
    return ExportRequestSpec.model_validate(
        {
            "name": f"{body.entity_type} export ({body.client})",
            "type": ExportType.ONE_TIME.value,
            "format": {"extension": "jsonl"},
            "items": [{"entities": {"entityType": body.entity_type}}],
        }
    )


def is_export(request: ExportRequest) -> bool:
    """Whether a request is a Mews export, as ``export_spec`` makes them: one-time, live, of one
    seed 003 entity type, as uncompressed JSON Lines. Other requests do not exist for Mews."""
    items = request.items
    if request.type is not ExportType.ONE_TIME or request.deleted_at is not None or len(items) != 1:
        return False
    entities = items[0].entities
    plain = request.format.compression is None
    return plain and entities is not None and entities.entity_type in ENTITY_TYPES


def export_id(request_id: str) -> str:
    """Our request ids are UUID hex; Mews clients hold ids as GUIDs (``3fa85f64-5717-…``)."""
    return str(uuid.UUID(hex=request_id))


def request_ids(export_ids: list[str]) -> list[str]:
    """The request ids that ``export_ids`` name; an id that is no UUID names none."""
    found = []
    for value in export_ids:
        try:
            found.append(uuid.UUID(value).hex)
        except ValueError:
            continue
    return found


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def export_view(
    request: ExportRequest, job: Job | UnreadableJob | None, links: list[Download], retention: timedelta
) -> dict[str, Any]:
    """One Mews ``Export`` of a request that ``is_export``. No job yet is Pending; a job that no
    longer reads is Failed. ``Files`` are the JSON Lines files, without the zip of them all that
    several files come with. Files expire ``retention`` after their job was created
    (``scheduler.retention_days``: the scheduler's sweep deletes them then), so ``ExpiresUtc`` is
    set once there are, or were, files."""
    status: ExportStatus = "Pending"
    expires = None
    if isinstance(job, UnreadableJob):
        status = "Failed"
    elif job is not None:
        status = STATUSES[job.status]
        if job.status in (JobStatus.DONE, JobStatus.EXPIRED):
            expires = job.created_at + retention
    entities = request.items[0].entities
    assert entities is not None  # is_export
    export = Export(
        id=export_id(request.id),
        status=status,
        entity_type=entities.entity_type,
        files=[
            ExportFile(url=link.url, size_in_bytes=link.file.size_in_bytes)
            for link in links
            if link.file.content_type != ZIP_CONTENT_TYPE
        ],
        expires_utc=_utc(expires),
    )
    return export.model_dump(mode="json", by_alias=True)


# Mews' own codes (its "Responses" guideline): 400 for a bad request or an unknown id, 401 for
# bad tokens, 403 for a business rule that refuses (ours: 403, 409 and 410), 429 with
# Retry-After; anything of ours above 499 is its 500.
_STATUS_CODES = {401: 401, 403: 403, 409: 403, 410: 403, 429: 429}


def error_status(status_code: int) -> int:
    return 500 if status_code >= 500 else _STATUS_CODES.get(status_code, 400)


def error_body(message: str, request_id: str) -> dict[str, Any]:
    return MewsError(message=message, request_id=request_id).model_dump(mode="json", by_alias=True)

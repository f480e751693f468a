"""Jobs and files for the notifier's unit and integration tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from exporter.contracts.job import JobSpec, Window
from exporter.contracts.request import ExportRequestSpec
from exporter.notifications.messages import FileLink

WINDOW_FROM = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW_TO = datetime(2026, 1, 1, 1, tzinfo=UTC)
LINKS_EXPIRE = datetime(2026, 1, 3, tzinfo=UTC)
TENANT = "default"


def request_body(messages: list[dict[str, Any]], name: str = "Plant temperatures") -> dict[str, Any]:
    return {
        "name": name,
        "type": "oneTime",
        "format": {"extension": "csv"},
        "items": [{"params": {"target": {"value": "urn:cpt:smartdevice:nid:D0CF5EFFFE26FDAB1:temperature"}}}],
        "notification": {"messages": messages},
    }


def job_spec(
    messages: list[dict[str, Any]] | None = None,
    *,
    name: str = "Plant temperatures",
    job_id: str = "r1-20260101T010000000Z",
    owner: str = "alice",
    tenant: str = TENANT,
) -> JobSpec:
    return JobSpec(
        job_id=job_id,
        request_id="r1",
        request_version=1,
        tenant=tenant,
        owner=owner,
        scheduled_at=WINDOW_TO,
        request=ExportRequestSpec.model_validate(request_body(messages or [], name)),
        windows=[Window(item=0, from_=WINDOW_FROM, to=WINDOW_TO)],
    )


def link(name: str, size: int) -> FileLink:
    return FileLink(
        name=name,
        url=f"https://s3.test/{name}?sig=abc",
        expires_at=LINKS_EXPIRE,
        size_in_bytes=size,
        key=f"k/{name}",
        content_type="text/csv",
    )

"""The renderer's tests: a fixed data set in the real store, jobs run through the real handler, and
what it wrote read back from the real object store."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exporter.contracts.events import ExportRequested
from exporter.contracts.ingest import Measurement
from exporter.contracts.job import Job, JobFile, JobResult, JobSpec
from exporter.contracts.request import ExportRequestSpec
from exporter.domain.windows import resolve_windows
from exporter.rendering.names import job_prefix
from exporter.runtime import Runtime
from renderer.export_job import handle_export_requested

ROME = "Europe/Rome"
DEVICE = "D0CF5EFFFE26FDAB1"
URN = f"urn:cpt:smartdevice:nid:{DEVICE}"
SCHEDULED_AT = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def measurement(
    tenant: str,
    name: str,
    moment: datetime,
    value: float | str | bool,
    unit: str = "",
    publisher: str = DEVICE,
) -> Measurement:
    kind = {bool: "boolValue", str: "stringValue"}.get(type(value), "value")
    return Measurement(tenant, "ch-1", "events.data", publisher, "senml", name, unit, ms(moment), kind, value)


async def store(
    runtime: Runtime, measurements: Sequence[Measurement], arrived: datetime | None = None
) -> None:
    await runtime.measurements.add_many(measurements, arrived)


def configure(runtime: Runtime, **renderer: Any) -> None:
    """This test's renderer settings; the session's stay as they were."""
    settings = runtime.settings
    runtime.settings = settings.model_copy(update={"renderer": settings.renderer.model_copy(update=renderer)})


def job_spec(
    tenant: str,
    body: dict[str, Any],
    scheduled_at: datetime = SCHEDULED_AT,
    previous_end: datetime | None = None,
) -> JobSpec:
    """``previous_end``: where a recurring request's previous run ended (see ``resolve_windows``)."""
    request = ExportRequestSpec.model_validate(body)
    return JobSpec(
        job_id=f"job-{uuid.uuid4().hex[:12]}",
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        request_version=1,
        tenant=tenant,
        owner="alice",
        scheduled_at=scheduled_at,
        request=request,
        windows=resolve_windows(request, scheduled_at, previous_end),
    )


def requested(spec: JobSpec) -> ExportRequested:
    return ExportRequested(id=spec.job_id, source="tests", subject=spec.job_id, tenant=spec.tenant, data=spec)


@dataclass
class Outcome:
    job: Job
    result: JobResult
    objects: dict[str, bytes]  # by file name

    def file(self, name: str) -> JobFile:
        return next(file for file in self.result.files if file.name == name)


async def objects_of(runtime: Runtime, spec: JobSpec) -> dict[str, bytes]:
    prefix = job_prefix(spec.tenant, spec.request_id, spec.job_id)
    return {
        key.removeprefix(prefix): await runtime.storage.read(key)
        for key in await runtime.storage.list_keys(prefix)
    }


async def render(runtime: Runtime, spec: JobSpec) -> Outcome:
    """Runs the job as a delivery of its ``export.requested`` would; returns the job and its files."""
    await handle_export_requested(runtime, requested(spec))
    job = await runtime.jobs.get(spec.job_id)
    assert job is not None
    return Outcome(job, job.result, await objects_of(runtime, spec))


def body(extension: str, items: list[dict[str, Any]], **format_fields: Any) -> dict[str, Any]:
    return {
        "name": "Weights of March",
        "type": "oneTime",
        "format": {"extension": extension, "timezone": ROME, **format_fields},
        "items": items,
    }


def series_item(metric: str, start: datetime, end: datetime, **params: Any) -> dict[str, Any]:
    return {"params": {"target": {"value": f"{URN}:{metric}"}, "from": ms(start), "to": ms(end), **params}}

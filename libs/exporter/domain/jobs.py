"""Turning a request and a scheduled time into a job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from exporter.contracts.job import JobSpec, job_id_for
from exporter.contracts.request import ExportRequest, ExportRequestSpec
from exporter.domain.job_life import DeliveryStatus
from exporter.domain.windows import resolve_windows


def job_for(request: ExportRequest, scheduled_at: datetime, previous_end: datetime | None = None) -> JobSpec:
    """``previous_end``: where the previous run's window ended (a recurring request's last run,
    or its anchor before the first)."""
    spec = request.spec()
    return JobSpec(
        job_id=job_id_for(request.id, scheduled_at),
        request_id=request.id,
        request_version=request.version,
        tenant=request.tenant,
        owner=request.owner,
        scheduled_at=scheduled_at,
        request=spec,
        windows=resolve_windows(spec, scheduled_at, previous_end),
    )


def pending_deliveries(spec: ExportRequestSpec) -> list[dict[str, Any]]:
    """One delivery record per notification message, kept on the job."""
    return [
        {
            "index": index,
            "medium": message.medium,
            "policy": message.policy,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "lastError": None,
            "updatedAt": None,
            "key": None,
        }
        for index, message in enumerate(spec.notification.messages)
    ]

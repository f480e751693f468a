"""How stored requests and jobs are shown to API clients (seed 000 shapes, seed 004 history)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from exporter.adapters.mongo.job_store import UnreadableJob
from exporter.adapters.mongo.requests import RequestRecord
from exporter.contracts.job import Job
from exporter.domain.schedule import upcoming_runs

HIDDEN_JOB_FIELDS = {"id", "leaseUntil", "spec", "targets", "announcements"}
# Per delivery, the notifier's own bookkeeping: its claim and idempotency key.
HIDDEN_DELIVERY_FIELDS = {"leaseUntil", "key"}
UPCOMING_RUNS = 5


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def job_view(job: Job | UnreadableJob) -> dict[str, Any]:
    """The stored job, but for what only the services use, plus its id and parameters; one that
    no longer validates, by its id and what is wrong with it."""
    if isinstance(job, UnreadableJob):
        return {"id": job.job_id, "problem": job.problem}
    view = {k: _json(v) for k, v in job.to_stored().items() if k not in HIDDEN_JOB_FIELDS}
    view["id"] = job.id
    view["notifications"] = [
        {k: v for k, v in delivery.items() if k not in HIDDEN_DELIVERY_FIELDS}
        for delivery in view.get("notifications", [])
    ]
    spec = job.spec or {}
    view["parameters"] = _json({"request": spec.get("request"), "windows": spec.get("windows")})
    return view


def request_view(record: RequestRecord) -> dict[str, Any]:
    """The seed 000 body plus id and timestamps, and the schedule: status and the next runs."""
    view = record.request.to_wire()
    view["status"] = record.status
    view["lastRunAt"] = _json(record.last_run_at)
    if record.paused_at is not None:  # see scheduler.firing: it stays so until an edit
        view["pausedAt"] = _json(record.paused_at)
        view["pausedReason"] = record.paused_reason
    upcoming = (
        [] if record.request.deleted_at else upcoming_runs(record.request, record.next_run_at, UPCOMING_RUNS)
    )
    view["nextRunTimes"] = [_json(run) for run in upcoming]
    return view

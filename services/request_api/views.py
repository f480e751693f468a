"""How a stored job is shown to API clients: its history record (seed 004) without internals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

HIDDEN = {"_id", "leaseUntil", "spec"}


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def job_view(job: dict[str, Any]) -> dict[str, Any]:
    view = {k: _json(v) for k, v in job.items() if k not in HIDDEN}
    view["id"] = job["_id"]
    spec = job.get("spec") or {}
    view["parameters"] = _json({"request": spec.get("request"), "windows": spec.get("windows")})
    return view

"""What the console's pages show, from the API's own views: times in the user's zone, sizes,
progress and rates, and job outcomes in plain words."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates

from exporter.contracts.time_bounds import known_timezones
from request_api.console.forms import PERIODICITY_PRESETS, placeholders

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
ZONE_COOKIE = "exporter_console_zone"
LIVE = {"notProcessed", "inProgress"}
OUTCOMES = {
    "notProcessed": "Waiting to start",
    "inProgress": "Running",
    "skipped": "Skipped",
    "done": "Finished",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "expired": "Files expired and deleted",
}


def zone_of(cookie: str | None) -> str:
    return cookie if cookie and cookie in known_timezones() else "UTC"


def instant(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def shown_time(value: str | datetime | None, zone: str) -> str:
    moment = instant(value)
    return "—" if moment is None else moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def size(count: int | None) -> str:
    amount = float(count or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return ""


def progress(job: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Rows and bytes so far, and the rate since the job started."""
    rows = max(int((job.get("progress") or {}).get("rows") or 0), int(job.get("rowCount") or 0))
    started = instant(job.get("startedAt"))
    ended = instant(job.get("completedAt")) or now
    seconds = (ended - started).total_seconds() if started else 0
    rate = f"{rows / seconds:,.0f} rows/s" if seconds > 0 and rows else "—"
    return {"rows": rows, "bytes": size(job.get("sizeInBytes")), "rate": rate}


def outcome(job: dict[str, Any] | None) -> str:
    """A job's state as a person reads it; a failure with its reason."""
    if job is None:
        return "Not run yet"
    if "problem" in job:
        return f"Unreadable: {job['problem']}"
    words = OUTCOMES.get(str(job.get("status")), str(job.get("status")))
    return f"{words}: {job['error']}" if job.get("error") else words


def is_live(job: dict[str, Any]) -> bool:
    return job.get("status") in LIVE


TEMPLATES.env.filters["when"] = shown_time
TEMPLATES.env.filters["size"] = size
TEMPLATES.env.globals.update(
    outcome=outcome,
    is_live=is_live,
    progress=progress,
    zones=sorted(known_timezones()),
    presets=PERIODICITY_PRESETS,
    placeholders=placeholders,
)

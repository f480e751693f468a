"""When an export request runs: ISO 8601 periods in the request's own timezone.

Run k of a recurring request is ``anchor + k × periodicity`` on the local wall clock, computed
from the anchor each time (never by adding to the previous run), so month ends do not drift
(31 Jan + P1M = 28/29 Feb, + P2M = 31 Mar) and 02:00 stays 02:00 across daylight-saving changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import isodate

from exporter.contracts.request import ExportRequest, ExportType, parse_iso_duration


def occurrence(anchor: datetime, periodicity: str, index: int, timezone: str) -> datetime:
    """The ``index``-th run time (UTC) of a series anchored at ``anchor``."""
    duration = parse_iso_duration(periodicity)
    zone = ZoneInfo(timezone)
    local_anchor = anchor.astimezone(zone).replace(tzinfo=None)
    if isinstance(duration, isodate.Duration):
        local: datetime = local_anchor + duration * index
    else:
        local = local_anchor + timedelta(seconds=duration.total_seconds() * index)
    return local.replace(tzinfo=zone).astimezone(UTC)


def first_run_at(request: ExportRequest) -> datetime:
    """A one-time request runs at once; a recurring one first runs one period after its anchor."""
    if request.type is ExportType.ONE_TIME or request.periodicity is None:
        return request.created_at
    return occurrence(request.created_at, request.periodicity, 1, request.format.timezone)


def _index_after(request: ExportRequest, periodicity: str, instant: datetime) -> int:
    """The first run index whose time is strictly after ``instant``."""

    def at(index: int) -> datetime:
        return occurrence(request.created_at, periodicity, index, request.format.timezone)

    index = 1
    step = 1
    # Gallop then bisect: finds the next index in O(log n) even after long downtime.
    while at(index) <= instant:
        index += step
        step *= 2
    low = max(1, index - step // 2)
    while low < index:
        middle = (low + index) // 2
        if at(middle) <= instant:
            low = middle + 1
        else:
            index = middle
    return index


def next_run_after(request: ExportRequest, fired_at: datetime) -> datetime | None:
    """The first run time strictly after ``fired_at``; ``None`` when the request is finished."""
    if request.type is ExportType.ONE_TIME or request.periodicity is None:
        return None
    index = _index_after(request, request.periodicity, fired_at)
    return occurrence(request.created_at, request.periodicity, index, request.format.timezone)


def upcoming_runs(request: ExportRequest, next_run_at: datetime | None, count: int) -> list[datetime]:
    """The next ``count`` run times, starting with the stored next one."""
    if next_run_at is None:
        return []
    if request.type is ExportType.ONE_TIME or request.periodicity is None:
        return [next_run_at]
    first = _index_after(request, request.periodicity, next_run_at)
    later = (
        occurrence(request.created_at, request.periodicity, index, request.format.timezone)
        for index in range(first, first + count - 1)
    )
    return [next_run_at, *later]

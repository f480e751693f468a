"""When an export request runs: ISO 8601 periods in the request's own timezone.

Grid time k of a recurring request is ``anchor + k × periodicity`` on the local wall clock. With
``startAt`` the anchor is ``startAt`` and the first run is grid time 0, ``startAt`` itself (one in
the past: the first grid time at or after creation); without it the anchor is the creation time
and the first run grid time 1, one period later. Each run time is computed from the anchor
(never by adding to the previous run), so month ends do not drift (31 Jan + P1M = 28/29 Feb,
+ P2M = 31 Mar) and 02:00 stays 02:00 local across daylight-saving changes. A local time that a
clock change skips (02:30 on a spring-forward night) runs an hour later, at 03:30; one that
happens twice (autumn) runs at its first occurrence. A periodicity without calendar days,
months or years (``PT15M``) is elapsed time instead: real hours apart whatever the clock does.

The request's bounds (``contracts.request``: instants up to 2100, periods up to 10 years) keep
every time computed here, including the look-ahead of ``_index_after``, far from year 9999.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import isodate

from exporter.contracts.request import ExportRequest, ExportType
from exporter.contracts.time_bounds import parse_iso_duration

# `PT15M`, also spelled `P0DT15M`: no calendar part.
_ELAPSED_RE = re.compile(r"^P(?:0+[YMWD])*T")


@functools.lru_cache(maxsize=4096)
def occurrence(anchor: datetime, periodicity: str, index: int, timezone: str) -> datetime:
    """The ``index``-th run time (UTC) of a series anchored at ``anchor``.

    Cached: finding the next runs asks for the same few occurrences several times over."""
    duration = parse_iso_duration(periodicity)
    if _ELAPSED_RE.match(periodicity) and isinstance(duration, timedelta):
        # Hours, minutes, seconds only: elapsed time, so "every 15 minutes" never skips or
        # doubles a run when the wall clock jumps.
        return anchor.astimezone(UTC) + duration * index
    zone = ZoneInfo(timezone)
    local_anchor = anchor.astimezone(zone).replace(tzinfo=None)
    if isinstance(duration, isodate.Duration):
        local: datetime = local_anchor + duration * index
    else:
        local = local_anchor + timedelta(seconds=duration.total_seconds() * index)
    # fold=0: a skipped local time takes the offset before the change (so it lands after the
    # gap), a repeated one its first occurrence.
    return local.replace(tzinfo=zone).astimezone(UTC)


def anchor_of(request: ExportRequest) -> datetime:
    return request.start_at or request.created_at


def first_run_at(request: ExportRequest) -> datetime:
    """A one-time request runs at once (or at ``startAt``); a recurring one at ``startAt`` (or the
    first grid time from its creation on, when ``startAt`` is past), else one period after it."""
    if request.type is ExportType.ONE_TIME or request.periodicity is None:
        return max(anchor_of(request), request.created_at)
    return _at(request, request.periodicity, _first_run_index(request, request.periodicity))


def window_start_before_first_run(request: ExportRequest) -> datetime | None:
    """Where a recurring request's data starts, for items that continue where the previous run
    stopped: at the grid time before its first run, one periodicity earlier (the creation time
    when there is no ``startAt``). None for a one-time request: all there is."""
    if request.type is ExportType.ONE_TIME or request.periodicity is None:
        return None
    return _at(request, request.periodicity, _first_run_index(request, request.periodicity) - 1)


def _first_run_index(request: ExportRequest, periodicity: str) -> int:
    return _index_after(request, periodicity, request.created_at - timedelta(microseconds=1))


def _at(request: ExportRequest, periodicity: str, index: int) -> datetime:
    return occurrence(anchor_of(request), periodicity, index, request.format.timezone)


def _index_after(request: ExportRequest, periodicity: str, instant: datetime) -> int:
    """The first run index whose time is strictly after ``instant``: from 0 with ``startAt``
    (its own time is a run), else from 1."""
    first = index = 0 if request.start_at is not None else 1
    step = 1
    # Gallop then bisect: finds the next index in O(log n) even after long downtime. The gallop
    # overshoots by less than the distance covered, so it stays within twice the span searched.
    while _at(request, periodicity, index) <= instant:
        index += step
        step *= 2
    low = max(first, index - step // 2)
    while low < index:
        middle = (low + index) // 2
        if _at(request, periodicity, middle) <= instant:
            low = middle + 1
        else:
            index = middle
    return index


def next_run_after(request: ExportRequest, instant: datetime) -> datetime | None:
    """The first run time strictly after ``instant``; ``None`` when the request is finished."""
    if request.type is ExportType.ONE_TIME or request.periodicity is None:
        return None
    return _at(request, request.periodicity, _index_after(request, request.periodicity, instant))


def upcoming_runs(request: ExportRequest, next_run_at: datetime | None, count: int) -> list[datetime]:
    """The next ``count`` run times, starting with the stored next one."""
    if next_run_at is None:
        return []
    if request.type is ExportType.ONE_TIME or request.periodicity is None:
        return [next_run_at]
    first = _index_after(request, request.periodicity, next_run_at)
    later = (_at(request, request.periodicity, index) for index in range(first, first + count - 1))
    return [next_run_at, *later]


@dataclass(frozen=True, slots=True)
class DueRuns:
    """What one scheduler pass does for one due request."""

    runs: list[datetime]  # scheduled times to fire now, oldest first
    next_run_at: datetime | None  # where the schedule moves to
    skipped: int  # missed periods not fired (catch-up policy or bound)


def due_runs(request: ExportRequest, due_at: datetime, now: datetime, max_catch_up: int) -> DueRuns:
    """The runs to fire for a request due at ``due_at``, seen at ``now``.

    After downtime several periods may have passed: ``catchUp: latest`` fires only the latest
    missed time, ``all`` every missed one, but never more than ``max_catch_up`` (the latest
    ones), so a long outage cannot set off a storm of exports.
    """
    if request.type is ExportType.ONE_TIME or request.periodicity is None:
        return DueRuns([due_at], None, 0)
    periodicity = request.periodicity
    first = _index_after(request, periodicity, due_at - timedelta(microseconds=1))
    following = _index_after(request, periodicity, max(due_at, now))
    missed = range(first, following)  # due_at itself is always among them; a range, never a list
    keep = 1 if request.catch_up == "latest" else max_catch_up
    fired = missed[-keep:]
    return DueRuns(
        [_at(request, periodicity, index) for index in fired],
        _at(request, periodicity, following),
        len(missed) - len(fired),
    )

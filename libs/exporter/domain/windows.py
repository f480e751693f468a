"""An item's data window, fixed when its job fires."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from exporter.contracts.job import Window
from exporter.contracts.request import ExportRequestSpec
from exporter.contracts.time_bounds import parse_iso_duration


def _from_epoch_ms(value: int) -> datetime | None:
    return None if value == 0 else datetime.fromtimestamp(value / 1000, UTC)


def period_start(end: datetime, period: str, timezone: str) -> datetime:
    """``end`` minus an ISO 8601 period on the local calendar (P1M before 31 Mar is 28/29 Feb)."""
    zone = ZoneInfo(timezone)
    local_end = end.astimezone(zone).replace(tzinfo=None)
    return (local_end - parse_iso_duration(period)).replace(tzinfo=zone).astimezone(UTC)


def resolve_windows(
    spec: ExportRequestSpec, scheduled_at: datetime, previous_end: datetime | None = None
) -> list[Window]:
    """``period`` means the period that ends at the run's scheduled time; ``from``/``to`` are
    absolute; a recurring item with neither takes what was stored since the previous run's
    window ended (``previous_end``), whenever it was measured, so consecutive runs neither
    overlap nor leave gaps, late readings included."""
    windows = []
    for index, item in enumerate(spec.items):
        params = item.window
        if params is None:  # entities: every one there is, whenever it was written
            windows.append(Window(item=index))
        elif params.period is not None:
            start = period_start(scheduled_at, params.period, spec.format.timezone)
            windows.append(Window(item=index, from_=start, to=scheduled_at))
        elif previous_end is not None and params.from_ == 0 and params.to == 0:
            windows.append(Window(item=index, from_=previous_end, to=scheduled_at, by="arrival"))
        else:
            windows.append(
                Window(item=index, from_=_from_epoch_ms(params.from_), to=_from_epoch_ms(params.to))
            )
    return windows

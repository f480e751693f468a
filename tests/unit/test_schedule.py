"""Run times: calendar arithmetic on the request's local clock."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from exporter.contracts.request import ExportRequest
from exporter.domain.schedule import first_run_at, next_run_after, occurrence

ROME = ZoneInfo("Europe/Rome")


def _request(periodicity: str | None, created: datetime, timezone: str = "UTC") -> ExportRequest:
    return ExportRequest.model_validate(
        {
            "id": "r1",
            "tenant": "t",
            "owner": "o",
            "createdAt": created,
            "updatedAt": created,
            "type": "recurring" if periodicity else "oneTime",
            "periodicity": periodicity,
            "format": {"extension": "csv", "timezone": timezone},
            "items": [{"params": {"target": {"value": "urn:x:dev:metric"}}}],
        }
    )


def test_month_end_does_not_drift() -> None:
    anchor = datetime(2024, 1, 31, 6, 0, tzinfo=UTC)
    runs = [occurrence(anchor, "P1M", k, "UTC") for k in range(1, 5)]
    assert [r.date().isoformat() for r in runs] == ["2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"]


def test_leap_day_yearly() -> None:
    anchor = datetime(2024, 2, 29, tzinfo=UTC)
    assert occurrence(anchor, "P1Y", 1, "UTC").date().isoformat() == "2025-02-28"
    assert occurrence(anchor, "P1Y", 4, "UTC").date().isoformat() == "2028-02-29"


def test_daily_local_time_survives_daylight_saving_in_rome() -> None:
    anchor = datetime(2026, 3, 27, 2, 0, tzinfo=ROME)  # two days before clocks go forward
    local_hours = [occurrence(anchor, "P1D", k, "Europe/Rome").astimezone(ROME).hour for k in range(5)]
    assert local_hours == [2, 2, 3, 2, 2]  # 02:00 does not exist on 29 March: it is 03:00 that day
    utc_hours = [occurrence(anchor, "P1D", k, "Europe/Rome").hour for k in (0, 4)]
    assert utc_hours == [1, 0]  # winter UTC+1, summer UTC+2


def test_seed_periodicity_adds_every_component() -> None:
    anchor = datetime(2024, 1, 1, tzinfo=UTC)
    assert occurrence(anchor, "P1Y6M4DT12H30M5S", 1, "UTC") == datetime(2025, 7, 5, 12, 30, 5, tzinfo=UTC)


def test_one_time_runs_at_creation_and_never_again() -> None:
    created = datetime(2026, 5, 1, 12, tzinfo=UTC)
    request = _request(None, created)
    assert first_run_at(request) == created
    assert next_run_after(request, created) is None


def test_next_run_after_long_downtime_is_the_first_future_one() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    request = _request("PT15M", created)
    assert first_run_at(request) == datetime(2026, 1, 1, 0, 15, tzinfo=UTC)
    later = datetime(2026, 3, 1, 10, 7, tzinfo=UTC)
    assert next_run_after(request, later) == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    exact = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    assert next_run_after(request, exact) == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)

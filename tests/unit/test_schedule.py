"""Run times: calendar arithmetic on the request's local clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from exporter.contracts.request import ExportRequest
from exporter.contracts.time_bounds import EARLIEST_TIME, LATEST_TIME
from exporter.domain.jobs import job_for
from exporter.domain.schedule import (
    due_runs,
    first_run_at,
    next_run_after,
    occurrence,
    upcoming_runs,
    window_start_before_first_run,
)
from exporter.domain.windows import period_start

ROME = ZoneInfo("Europe/Rome")
NEW_YORK = ZoneInfo("America/New_York")


def _request(
    periodicity: str | None, created: datetime, timezone: str = "UTC", **fields: object
) -> ExportRequest:
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
            **fields,
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


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %z")


def test_daily_at_two_stays_at_two_across_both_rome_changes() -> None:
    start = datetime(2026, 3, 27, 2, 0, tzinfo=ROME)  # spring forward on 29 March
    request = _request("P1D", start.astimezone(UTC), "Europe/Rome", startAt=start.astimezone(UTC))
    runs = [_local(occurrence(start, "P1D", k, "Europe/Rome"), ROME) for k in range(1, 5)]
    # 29 March 02:00 does not exist in Rome: that run happens right after the jump, at 03:00.
    assert runs == [
        "2026-03-28 02:00 +0100",
        "2026-03-29 03:00 +0200",
        "2026-03-30 02:00 +0200",
        "2026-03-31 02:00 +0200",
    ]
    autumn = datetime(2026, 10, 24, 2, 30, tzinfo=ROME)  # fall back on 25 October: 02:30 happens twice
    runs = [_local(occurrence(autumn, "P1D", k, "Europe/Rome"), ROME) for k in range(1, 4)]
    assert runs == ["2026-10-25 02:30 +0200", "2026-10-26 02:30 +0100", "2026-10-27 02:30 +0100"]
    # startAt is the first run: 27, 28, then 29 March, the day 02:00 is skipped.
    upcoming = upcoming_runs(request, first_run_at(request), 3)
    assert [run.astimezone(ROME).hour for run in upcoming] == [2, 2, 3]


def test_new_york_changes_keep_the_local_hour_and_hourly_runs_keep_real_hours() -> None:
    start = datetime(2026, 3, 7, 9, 0, tzinfo=NEW_YORK)  # clocks go forward on 8 March
    assert [_local(occurrence(start, "P1D", k, "America/New_York"), NEW_YORK)[11:] for k in (0, 1)] == [
        "09:00 -0500",
        "09:00 -0400",
    ]
    november = datetime(2026, 11, 1, 0, 30, tzinfo=NEW_YORK)  # back on 1 November at 02:00
    hourly = [occurrence(november, "PT1H", k, "America/New_York") for k in range(1, 4)]
    # PT1H is elapsed time: runs stay one real hour apart while the wall clock repeats 01:xx.
    assert [b - a for a, b in itertools.pairwise(hourly)] == [timedelta(hours=1)] * 2


def test_leap_day_anchor_and_the_seed_duration() -> None:
    leap = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    assert [occurrence(leap, "P1Y", k, "UTC").date().isoformat() for k in (1, 4)] == [
        "2025-02-28",
        "2028-02-29",
    ]
    anchor = datetime(2026, 1, 31, tzinfo=UTC)
    assert occurrence(anchor, "P1Y6M4DT12H30M5S", 2, "UTC") == datetime(2029, 2, 9, 1, 0, 10, tzinfo=UTC)


def test_start_at_is_the_first_run_and_the_upcoming_ones_start_there() -> None:
    """Issue 14 finding 10: a daily request from 26 March 03:00 (+01:00) first runs on the 26th."""
    created = datetime(2027, 3, 20, 9, 41, tzinfo=UTC)
    start = datetime(2027, 3, 26, 3, 0, tzinfo=ROME)
    request = _request("P1D", created, "Europe/Rome", startAt=start)
    first = first_run_at(request)
    assert first == start
    assert [_local(run, ROME) for run in upcoming_runs(request, first, 5)] == [
        "2027-03-26 03:00 +0100",
        "2027-03-27 03:00 +0100",
        "2027-03-28 03:00 +0200",  # clocks go forward that night; 03:00 stays 03:00
        "2027-03-29 03:00 +0200",
        "2027-03-30 03:00 +0200",
    ]
    assert next_run_after(request, created) == start
    once = _request(None, created, startAt=start)
    assert first_run_at(once) == start  # a one-time request waits for its start


def test_a_past_start_at_anchors_the_grid_and_the_first_run_is_the_first_time_from_creation() -> None:
    created = datetime(2026, 5, 5, 10, 17, tzinfo=UTC)
    past = _request("P1D", created, startAt=datetime(2026, 5, 1, 2, 0, tzinfo=UTC))
    assert first_run_at(past) == datetime(2026, 5, 6, 2, 0, tzinfo=UTC)
    on_the_grid = _request("PT1H", created, startAt=created - timedelta(hours=3))
    assert first_run_at(on_the_grid) == created  # a grid time at creation is the first run
    without = _request("P1D", created)
    assert first_run_at(without) == created + timedelta(days=1)  # one period after creation


def test_the_first_runs_window_is_the_periodicity_before_it() -> None:
    """Items with neither ``period`` nor ``from``/``to`` continue where the previous run stopped;
    before the first run, the previous run is the grid time one periodicity earlier."""
    created = datetime(2026, 5, 5, 10, 17, tzinfo=UTC)
    start = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    future = _request("P1D", created, startAt=start)
    assert window_start_before_first_run(future) == datetime(2026, 5, 31, 2, 0, tzinfo=UTC)
    window = job_for(future, start, window_start_before_first_run(future)).windows[0]
    assert (window.from_, window.to) == (datetime(2026, 5, 31, 2, 0, tzinfo=UTC), start)
    past = _request("P1M", created, startAt=datetime(2026, 1, 31, tzinfo=UTC))
    assert first_run_at(past) == datetime(2026, 5, 31, tzinfo=UTC)
    assert window_start_before_first_run(past) == datetime(2026, 4, 30, tzinfo=UTC)
    assert window_start_before_first_run(_request("P1D", created)) == created
    assert window_start_before_first_run(_request(None, created, startAt=start)) is None  # all there is


def test_nothing_overflows_inside_the_bounds() -> None:
    """The earliest and latest start, the longest and a short period, a late look-up."""
    latest = _request("P10Y", EARLIEST_TIME, startAt=LATEST_TIME)
    assert first_run_at(latest) == LATEST_TIME
    assert upcoming_runs(latest, LATEST_TIME, 5)[-1] == datetime(2140, 1, 1, tzinfo=UTC)
    assert window_start_before_first_run(latest) == datetime(2090, 1, 1, tzinfo=UTC)
    assert period_start(LATEST_TIME, "P10Y", "Pacific/Kiritimati") == datetime(2090, 1, 1, tzinfo=UTC)
    minutely = _request("PT1M", EARLIEST_TIME, "Pacific/Kiritimati", startAt=EARLIEST_TIME)
    assert next_run_after(minutely, LATEST_TIME + timedelta(days=3653)) is not None
    assert window_start_before_first_run(minutely) == EARLIEST_TIME - timedelta(minutes=1)
    due = due_runs(minutely, LATEST_TIME - timedelta(days=30), LATEST_TIME, max_catch_up=24)
    assert (due.runs[-1], due.skipped) == (LATEST_TIME, 30 * 24 * 60)
    monthly = _request("P1M", EARLIEST_TIME, "Etc/GMT+12", startAt=EARLIEST_TIME)
    assert job_for(monthly, LATEST_TIME, window_start_before_first_run(monthly)).windows[0].to == LATEST_TIME


def test_a_periodicity_without_calendar_days_is_elapsed_time_whatever_its_spelling() -> None:
    november = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK).replace(fold=1)  # the second 01:30
    spellings = [
        [occurrence(november, text, k, "America/New_York") for k in range(3)] for text in ("PT1M", "P0DT1M")
    ]
    assert spellings[0] == spellings[1]
    assert [b - a for a, b in itertools.pairwise(spellings[1])] == [timedelta(minutes=1)] * 2


def test_catch_up_latest_fires_once_and_all_fires_each_missed_period_up_to_the_bound() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    due = datetime(2026, 1, 1, 1, tzinfo=UTC)  # run 1 of an hourly request
    now = datetime(2026, 1, 1, 5, 30, tzinfo=UTC)  # the scheduler was down for 4.5 hours
    latest = due_runs(_request("PT1H", created), due, now, max_catch_up=24)
    assert latest.runs == [datetime(2026, 1, 1, 5, tzinfo=UTC)]
    assert latest.next_run_at == datetime(2026, 1, 1, 6, tzinfo=UTC)
    assert latest.skipped == 4
    every = due_runs(_request("PT1H", created, catchUp="all"), due, now, max_catch_up=24)
    assert [run.hour for run in every.runs] == [1, 2, 3, 4, 5]
    assert every.skipped == 0
    bounded = due_runs(_request("PT1H", created, catchUp="all"), due, now, max_catch_up=2)
    assert [run.hour for run in bounded.runs] == [4, 5]
    assert bounded.skipped == 3
    on_time = due_runs(_request("PT1H", created), due, due, max_catch_up=24)
    assert (on_time.runs, on_time.next_run_at, on_time.skipped) == (
        [due],
        datetime(2026, 1, 1, 2, tzinfo=UTC),
        0,
    )


def test_windows_chain_without_gaps_or_overlaps() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    request = _request("PT1H", created)
    runs = [occurrence(created, "PT1H", k, "UTC") for k in range(1, 4)]
    windows = []
    previous = created
    for run in runs:
        windows.append(job_for(request, run, previous).windows[0])
        previous = run
    assert [(w.from_, w.to) for w in windows] == [(created, runs[0]), (runs[0], runs[1]), (runs[1], runs[2])]
    with_period = _request(
        "PT1H", created, items=[{"params": {"target": {"value": "urn:x:d:m"}, "period": "PT15M"}}]
    )
    window = job_for(with_period, runs[0], created).windows[0]
    assert (window.from_, window.to) == (runs[0] - timedelta(minutes=15), runs[0])
    once = _request(None, created)
    assert job_for(once, created).windows[0].from_ is None  # open: everything there is

"""Recurring runs that take the readings stored since the previous run (windows by arrival),
through the real renderer: every reading goes out once, a late one with the run after it was
stored, and a run that starts right after its window ended waits for that window to settle."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exporter.contracts.base import utcnow
from exporter.contracts.job import JobSpec
from exporter.domain.job_life import JobStatus
from exporter.runtime import Runtime
from tests.integration.renderer_support import (
    URN,
    Outcome,
    configure,
    job_spec,
    measurement,
    render,
    store,
)

pytestmark = pytest.mark.servers
TENANT = "acme"
RUN_1 = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
RUN_2 = RUN_1 + timedelta(hours=1)
COLUMNS = [{"id": "time", "label": "Time"}, {"id": "value", "label": "Weight"}]


def recurring(scheduled_at: datetime, previous_end: datetime) -> JobSpec:
    body: dict[str, Any] = {
        "name": "Hourly weights",
        "type": "recurring",
        "periodicity": "PT1H",
        "format": {"extension": "csv", "timezone": "UTC", "columns": COLUMNS},
        "items": [{"params": {"target": {"value": f"{URN}:weight"}}}],
    }
    spec = job_spec(TENANT, body, scheduled_at, previous_end)
    assert spec.windows[0].by == "arrival"
    return spec


async def stored(runtime: Runtime, measured: datetime, value: float, arrived: datetime) -> None:
    await store(runtime, [measurement(TENANT, "weight", measured, value, "kg")], arrived)


async def values(runtime: Runtime, spec: JobSpec) -> list[str]:
    return values_of(await render(runtime, spec))


def values_of(outcome: Outcome) -> list[str]:
    assert outcome.result.status is JobStatus.DONE, outcome.result.error
    [content] = outcome.objects.values()
    return [row[1] for row in csv.reader(io.StringIO(content.decode(), newline=""))][1:]


async def test_consecutive_runs_take_each_reading_once_late_ones_with_the_next_run(runtime: Runtime) -> None:
    second = timedelta(seconds=1)
    await stored(runtime, RUN_1 - timedelta(minutes=30), 1.0, arrived=RUN_1 - timedelta(minutes=29))
    # Measured before run 1's end but stored just after it: run 2.
    await stored(runtime, RUN_1 - second, 2.0, arrived=RUN_1)
    # Measured a day before, stored during run 2's window.
    await stored(runtime, RUN_1 - timedelta(days=1), 3.0, arrived=RUN_1 + timedelta(minutes=30))
    await stored(runtime, RUN_1 + timedelta(minutes=10), 4.0, arrived=RUN_2 - timedelta(milliseconds=1))
    await stored(runtime, RUN_1 + timedelta(minutes=20), 5.0, arrived=RUN_2)  # run 3's

    assert await values(runtime, recurring(RUN_1, RUN_1 - timedelta(hours=1))) == ["1.0"]
    # Exported in measured time order, whatever the order of arrival.
    assert await values(runtime, recurring(RUN_2, RUN_1)) == ["3.0", "2.0", "4.0"]


async def test_a_run_right_after_its_window_waits_for_readings_still_being_stored(runtime: Runtime) -> None:
    configure(runtime, arrival_settle_seconds=3.0)
    now = utcnow().replace(microsecond=0)
    spec = recurring(now, now - timedelta(hours=1))
    running = asyncio.create_task(render(runtime, spec))
    while (job := await runtime.jobs.get(spec.job_id)) is None or job.status is JobStatus.NOT_PROCESSED:
        await asyncio.sleep(0.05)
    assert job.status is JobStatus.IN_PROGRESS
    # A flush stamped just before the window's end, stored once the run has started.
    await stored(runtime, now - timedelta(days=2), 7.0, arrived=now - timedelta(milliseconds=1))
    assert not running.done()
    assert values_of(await running) == ["7.0"]

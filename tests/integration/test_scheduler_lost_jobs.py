"""A job whose ``export.requested`` was lost is announced again, rendered once, or failed with a
reason once no renderer ever comes; one whose announcement is only late is left alone."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from exporter.adapters.mongo.client import JOBS, OUTBOX
from exporter.contracts.base import utcnow
from exporter.contracts.events import ExportRequested
from exporter.domain.job_life import JobStatus
from exporter.runtime import Runtime
from renderer.export_job import handle_export_requested
from scheduler.sweeping import sweep
from tests.integration.test_scheduler import export_request, fire_until_idle, outbox_messages, store


def lost_by(runtime: Runtime) -> datetime:
    """When a sweep sees as lost a job announced until now (taken afresh after each
    announcement: on a slow machine a fixed time would fall before the latest)."""
    return utcnow() + timedelta(seconds=runtime.settings.scheduler.lost_job_seconds + 1)


async def queued(runtime: Runtime) -> tuple[str, datetime]:
    """A fired job, its id, and the time a sweep sees it as lost."""
    now = utcnow()
    await store(runtime, [export_request(1, now, type="oneTime", startAt=now)])
    assert await fire_until_idle(runtime, now) == 1
    job = await runtime.db[JOBS].find_one()
    assert job is not None
    return str(job["_id"]), lost_by(runtime)


async def published(runtime: Runtime) -> list[dict[str, Any]]:
    """What the outbox held, gone as a relay would leave it (and a broker then lose it)."""
    messages = await outbox_messages(runtime)
    await runtime.db[OUTBOX].delete_many({})
    return messages


def announcement(message: dict[str, Any]) -> ExportRequested:
    assert message["topic"] == "export.requested"
    return ExportRequested.model_validate(message["payload"])


async def test_a_lost_announcement_is_made_again_and_the_job_rendered_once(runtime: Runtime) -> None:
    job_id, later = await queued(runtime)
    [first] = await published(runtime)  # and lost on the way

    assert await sweep(runtime, later) == (0, 1)
    [again] = await published(runtime)
    assert announcement(again).data.job_id == job_id
    assert announcement(again).id != announcement(first).id

    await handle_export_requested(runtime, announcement(again))
    done = await runtime.jobs.get(job_id)
    assert done is not None
    assert done.status is JobStatus.DONE
    # The first announcement turns up after all: the claim makes it harmless.
    await handle_export_requested(runtime, announcement(first))
    assert await runtime.jobs.get(job_id) == done
    assert await sweep(runtime, later) == (0, 0)


async def test_a_job_no_renderer_takes_fails_after_its_announcements_with_its_reason(
    runtime: Runtime,
) -> None:
    job_id, later = await queued(runtime)
    announcements = runtime.settings.scheduler.max_job_announcements
    for _ in range(announcements):
        await published(runtime)
        assert await sweep(runtime, lost_by(runtime)) == (0, 1)

    failed = await runtime.jobs.get(job_id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert (failed.error or "").startswith("Job was never started: no renderer took it")
    assert f"({announcements} announcements)" in (failed.error or "")
    [completed] = await published(runtime)
    assert completed["topic"] == "export.completed"
    assert completed["payload"]["data"]["status"] == JobStatus.FAILED.value
    assert await sweep(runtime, later) == (0, 0)


async def test_an_announcement_still_in_the_outbox_is_late_not_lost(runtime: Runtime) -> None:
    job_id, later = await queued(runtime)

    assert await sweep(runtime, later) == (0, 0)  # Kafka down: the relay has not sent it yet
    job = await runtime.jobs.get(job_id)
    assert job is not None
    assert job.status is JobStatus.NOT_PROCESSED
    assert len(await outbox_messages(runtime)) == 1


async def test_a_started_job_is_not_announced_again(runtime: Runtime) -> None:
    job_id, later = await queued(runtime)
    await published(runtime)
    assert await runtime.jobs.start(job_id, timedelta(hours=2)) is not None

    assert await sweep(runtime, later) == (0, 0)
    assert await outbox_messages(runtime) == []

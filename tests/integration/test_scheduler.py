"""The scheduler's firing and housekeeping against the real store and broker."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.client_session import AsyncClientSession

from exporter.adapters.mongo.client import JOBS, OUTBOX, REQUESTS
from exporter.adapters.mongo.requests import RequestRecord, Unreadable, request_document
from exporter.contracts.base import utcnow
from exporter.contracts.request import ExportRequest
from exporter.domain.job_life import JobStatus
from exporter.domain.schedule import first_run_at
from exporter.rendering.names import job_prefix
from exporter.runtime import Runtime
from exporter.service_layer.dispatch import queued_job
from scheduler import firing
from scheduler.firing import fire_due, fire_shard, shard_order
from scheduler.sweeping import expire_old_jobs, sweep

ALL_SHARDS = shard_order()


def export_request(index: int, created: datetime, **fields: Any) -> ExportRequest:
    return ExportRequest.model_validate(
        {
            "id": f"req-{index:04d}",
            "tenant": "acme",
            # An owner each: these tests fire more runs than one user's queued-jobs quota admits.
            "owner": f"owner{index}",
            "createdAt": created,
            "updatedAt": created,
            "format": {"extension": "csv"},
            "items": [{"params": {"target": {"value": f"urn:x:dev{index}:power"}, "period": "PT1H"}}],
            **fields,
        }
    )


async def store(runtime: Runtime, requests: list[ExportRequest]) -> None:
    documents = [request_document(request, first_run_at(request)) for request in requests]
    await runtime.db[REQUESTS].insert_many(documents)


async def fire_until_idle(runtime: Runtime, now: datetime) -> int:
    fired = 0
    while batch := await fire_due(runtime, ALL_SHARDS, now):
        fired += batch
    return fired


async def outbox_messages(runtime: Runtime) -> list[dict[str, Any]]:
    return [message async for entry in runtime.db[OUTBOX].find() for message in entry["messages"]]


async def test_each_due_run_fires_once_with_its_event_and_the_schedule_moves_on(runtime: Runtime) -> None:
    now = utcnow()
    hour_ago = now - timedelta(hours=1, minutes=30)
    one_time = [export_request(i, now, type="oneTime", startAt=now - timedelta(seconds=5)) for i in range(30)]
    hourly = [export_request(100 + i, hour_ago, type="recurring", periodicity="PT1H") for i in range(20)]
    later = [export_request(200, now, type="oneTime", startAt=now + timedelta(hours=1))]
    await store(runtime, one_time + hourly + later)

    assert await fire_until_idle(runtime, now) == 50
    assert await fire_until_idle(runtime, now) == 0

    jobs = [job async for job in runtime.db[JOBS].find()]
    assert Counter(job["requestId"] for job in jobs) == {r.id: 1 for r in one_time + hourly}
    assert {job["status"] for job in jobs} == {JobStatus.NOT_PROCESSED.value}
    # One outbox entry per committed batch, one export.requested per job, keyed by the job.
    assert sorted(m["key"] for m in await outbox_messages(runtime)) == sorted(job["_id"] for job in jobs)
    assert await runtime.db[OUTBOX].count_documents({}) < len(jobs)

    records = {
        r.request.id: r
        for r in await runtime.requests.get_many("acme", [r.id for r in one_time + hourly + later])
    }
    assert all(records[r.id].next_run_at is None and records[r.id].status == "finished" for r in one_time)
    assert all(records[r.id].next_run_at == hour_ago + timedelta(hours=2) for r in hourly)
    assert records[later[0].id].next_run_at == later[0].start_at


async def test_two_replicas_on_the_same_shards_fire_every_run_exactly_once(runtime: Runtime) -> None:
    now = utcnow()
    await store(runtime, [export_request(i, now, type="oneTime", startAt=now) for i in range(400)])
    second = Runtime.build(runtime.settings)
    await second.prepare()
    try:
        # The same walk for both: the worst case, every read races the other replica's.
        fired = await asyncio.gather(fire_until_idle(runtime, now), fire_until_idle(second, now))
    finally:
        await second.close()

    assert sum(fired) == 400
    jobs = Counter([job["requestId"] async for job in runtime.db[JOBS].find()])
    assert len(jobs) == 400
    assert set(jobs.values()) == {1}
    messages = await outbox_messages(runtime)
    assert len(messages) == 400
    assert len({m["id"] for m in messages}) == 400


async def test_an_edit_between_read_and_commit_wins(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    request = export_request(1, now, type="oneTime", startAt=now)
    await store(runtime, [request])
    shard = request_document(request, None)["schedule"]["shard"]
    postponed = now + timedelta(days=1)
    read_due = runtime.requests.due

    async def due_then_edited(
        shard: int, at: datetime, limit: int, session: AsyncClientSession | None, only: str | None = None
    ) -> list[RequestRecord | Unreadable]:
        records = await read_due(shard, at, limit, session, only)
        if records:  # the owner moves the start while this pass plans the run it read
            moved = request.model_copy(update={"version": 2, "start_at": postponed})
            assert await runtime.requests.replace(moved, 1, postponed)
        return records

    monkeypatch.setattr(runtime.requests, "due", due_then_edited)
    assert await fire_shard(runtime, shard, now) == 0

    assert await runtime.db[JOBS].count_documents({}) == 0
    record = await runtime.requests.get("acme", request.id)
    assert record is not None
    assert record.next_run_at == postponed
    assert record.request.version == 2


async def test_a_run_whose_job_exists_is_not_fired_again_and_the_rest_of_the_batch_is(
    runtime: Runtime,
) -> None:
    now = utcnow()
    requests = [export_request(i, now, type="oneTime", startAt=now) for i in range(40)]
    await store(runtime, requests)
    # The same run, fired by other means (a restored backup, an operator's script).
    shards = {request_document(r, None)["schedule"]["shard"] for r in requests}
    done_before = next(r for r in requests if request_document(r, None)["schedule"]["shard"] == min(shards))
    job, _ = queued_job(done_before, now, "test")
    await runtime.jobs.add(job)

    assert await fire_until_idle(runtime, now) == 39
    assert await runtime.db[JOBS].count_documents({}) == 40
    assert job["_id"] not in {m["key"] for m in await outbox_messages(runtime)}
    record = await runtime.requests.get("acme", done_before.id)
    assert record is not None
    assert record.status == "finished"


@pytest.fixture
async def running_job(runtime: Runtime) -> str:
    """A fired job whose renderer took it and then died (its lease already ran out)."""
    now = utcnow()
    await store(runtime, [export_request(1, now, type="oneTime", startAt=now)])
    await fire_until_idle(runtime, now)
    await runtime.db[OUTBOX].delete_many({})
    job = await runtime.db[JOBS].find_one()
    assert job is not None
    assert await runtime.jobs.start(job["_id"], timedelta(seconds=-1))
    return str(job["_id"])


async def test_a_job_whose_renderer_died_is_requeued_then_failed_after_its_attempts(
    runtime: Runtime, running_job: str
) -> None:
    attempts = runtime.settings.scheduler.max_job_attempts
    for attempt in range(1, attempts):
        assert await sweep(runtime) == (1, 0)
        job = await runtime.jobs.get(running_job)
        assert job is not None
        assert job.status is JobStatus.NOT_PROCESSED
        assert job.attempts == attempt
        assert [m["topic"] for m in await outbox_messages(runtime)] == ["export.requested"] * attempt
        assert await runtime.jobs.start(running_job, timedelta(seconds=-1))

    assert await sweep(runtime) == (1, 0)
    job = await runtime.jobs.get(running_job)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert f"attempt {attempts} of {attempts}" in (job.error or "")
    assert (await outbox_messages(runtime))[-1]["topic"] == "export.completed"
    assert await sweep(runtime) == (0, 0)


async def test_jobs_past_retention_lose_their_files_and_become_expired(
    runtime: Runtime, tmp_path: Any
) -> None:
    now = utcnow()
    await store(runtime, [export_request(1, now, type="oneTime", startAt=now)])
    await fire_until_idle(runtime, now)
    job = await runtime.db[JOBS].find_one()
    assert job is not None
    prefix = job_prefix(job["tenant"], job["requestId"], job["_id"])
    file = tmp_path / "a.csv"
    file.write_text("time,value\n")
    await runtime.storage.ensure_bucket()
    await runtime.storage.upload_file(f"{prefix}a-{uuid.uuid4().hex}.csv", file, "text/csv")

    assert await expire_old_jobs(runtime, now) == 0  # within retention: kept
    later = now + timedelta(days=runtime.settings.scheduler.retention_days + 1)
    assert await expire_old_jobs(runtime, later) == 1
    assert await runtime.storage.list_keys(prefix) == []
    expired = await runtime.jobs.get(job["_id"])
    assert expired is not None
    assert expired.status is JobStatus.EXPIRED
    assert await expire_old_jobs(runtime, later) == 0


async def test_a_long_pass_fires_in_each_shard_what_fell_due_before_its_turn(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that takes longer than a period (a survivor catching up on a dead replica's shards)
    must not leave what fell due meanwhile to the next pass, which would then have more to do."""
    start = utcnow()
    request = export_request(1, start, type="oneTime", startAt=start + timedelta(seconds=30))
    await store(runtime, [request])
    shard = request_document(request, None)["schedule"]["shard"]
    earlier = [other for other in ALL_SHARDS if other != shard][:3]
    # Each shard's turn comes a minute after the one before it.
    clock = iter(start + timedelta(minutes=turn) for turn in range(len(earlier) + 1))
    monkeypatch.setattr(firing, "utcnow", lambda: next(clock))

    assert await fire_due(runtime, [*earlier, shard]) == 1
    assert await runtime.db[JOBS].count_documents({"requestId": request.id}) == 1

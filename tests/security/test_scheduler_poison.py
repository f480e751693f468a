"""One poison request, or one damaged job, never stops the scheduler for the others.

Stored data can be bad whatever the API checks today (older versions, direct writes, a future
bug): here it is written straight into the store, beside healthy requests in the same shard and
in others, and one pass must fire every healthy one and pause each poison one.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

import bson
import httpx
import pytest
from pymongo import AsyncMongoClient

from exporter.adapters.mongo.client import JOBS, OUTBOX, REQUESTS
from exporter.adapters.mongo.requests import request_document, schedule_shard
from exporter.contracts.base import utcnow
from exporter.contracts.request import ExportRequest
from exporter.domain.job_life import JobStatus
from exporter.domain.schedule import first_run_at
from exporter.runtime import Runtime
from exporter.service_layer import unit_of_work
from exporter.service_layer.dispatch import queued_job
from exporter.settings import Settings
from scheduler import app as scheduler_app
from scheduler import firing
from scheduler.firing import fire_due, shard_order
from scheduler.sweeping import sweep
from tests.integration.api_server import isolated, serving
from tests.request_cases import SEED_000

HOUR = timedelta(hours=1)


def request_of(request_id: str, owner: str, created: datetime, **fields: Any) -> ExportRequest:
    return ExportRequest.model_validate(
        {
            "id": request_id,
            "tenant": "acme",
            "owner": owner,
            "createdAt": created,
            "updatedAt": created,
            "format": {"extension": "csv"},
            "items": [{"params": {"target": {"value": f"urn:x:{request_id}:power"}, "period": "PT1H"}}],
            **fields,
        }
    )


def stored(request_id: str, owner: str, created: datetime, **fields: Any) -> dict[str, Any]:
    request = request_of(request_id, owner, created, **fields)
    return request_document(request, first_run_at(request))


def hourly(request_id: str, created: datetime, item: dict[str, Any]) -> dict[str, Any]:
    """A recurring request, due, whose run cannot be planned because of ``item``."""
    document = stored(request_id, "mallory", created, type="recurring", periodicity="PT1H")
    document["items"] = [{"params": {"target": {"value": f"urn:x:{request_id}:power"}, **item}}]
    return document


async def iam_events(runtime: Runtime) -> list[dict[str, Any]]:
    return [
        message["payload"]
        async for entry in runtime.db[OUTBOX].find()
        for message in entry["messages"]
        if message["topic"] == "iam.policy-updated"
    ]


def unplannable(monkeypatch: pytest.MonkeyPatch, request_id: str) -> None:
    """Planning ``request_id``'s runs fails as a calendar overflow would: requests inside today's
    bounds cannot do that, but one stored by another version, or a future bug, may."""

    def failing(request: ExportRequest, *args: Any) -> Any:
        if request.id == request_id:
            raise OverflowError("date value out of range")
        return queued_job(request, *args)

    monkeypatch.setattr(firing, "queued_job", failing)


async def test_poison_requests_are_paused_with_their_reason_and_the_others_fire(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    created = now - timedelta(hours=1, minutes=1)
    # Past today's bounds, as an older version may have stored them: they no longer validate.
    far_period = hourly("poison-period", created, {"period": "P3000Y"})
    far_to = hourly("poison-to", created, {"to": 10**15})
    unreadable = hourly("poison-invalid", created, {"period": "PT1H"})
    unreadable["format"] = {"extension": "exe"}
    unreadable["version"] = 3
    failing = hourly("poison-plan", created, {"period": "PT1H"})
    unplannable(monkeypatch, "poison-plan")
    poison = [far_period, far_to, unreadable, failing]
    healthy = [
        stored(f"ok-{index:03d}", f"user{index % 4}", now, type="oneTime", startAt=now - timedelta(seconds=1))
        for index in range(48)
    ]
    poison_shards = {document["schedule"]["shard"] for document in poison}
    assert any(document["schedule"]["shard"] in poison_shards for document in healthy)
    assert any(document["schedule"]["shard"] not in poison_shards for document in healthy)
    await runtime.db[REQUESTS].insert_many(poison + healthy)

    assert await fire_due(runtime, shard_order(), now) == len(healthy)

    fired = {job["requestId"] async for job in runtime.db[JOBS].find()}
    assert fired == {document["_id"] for document in healthy}
    for document in poison:
        schedule = (await runtime.db[REQUESTS].find_one({"_id": document["_id"]}) or {})["schedule"]
        assert schedule["nextRunAt"] is None
        assert schedule["pausedAt"] is not None
        assert schedule["pausedReason"].startswith("paused: ")
        assert schedule["pausedReason"].endswith("edit the request to resume")
    record = await runtime.requests.get("acme", "poison-plan")
    assert record is not None
    assert record.status == "paused"
    assert "could not be planned because a date, period or window" in (record.paused_reason or "")
    pauses = [event for event in await iam_events(runtime) if event["data"]["action"] == "pause"]
    assert sorted(event["data"]["resource"] for event in pauses) == sorted(
        f"urn:exporter:acme:export:{document['_id']}" for document in poison
    )
    assert {event["data"]["owner"] for event in pauses} == {"mallory"}
    assert [e["data"]["version"] for e in pauses if e["data"]["resource"].endswith("poison-invalid")] == [3]

    # Paused is paused: the next passes leave them alone, and announce nothing more.
    assert await fire_due(runtime, shard_order(), now + timedelta(hours=2)) == 0
    assert len([e for e in await iam_events(runtime) if e["data"]["action"] == "pause"]) == len(poison)


async def stuck_jobs(runtime: Runtime) -> tuple[str, str]:
    """Two fired jobs whose renderer died: the first with a spec that no longer validates."""
    now = utcnow()
    ids = []
    for index in range(2):
        request = request_of(f"stuck-{index}", "alice", now, type="oneTime", startAt=now)
        job, _ = queued_job(request, now, "test")
        await runtime.jobs.add(job)
        assert await runtime.jobs.start(job["_id"], timedelta(seconds=-1))
        ids.append(job["_id"])
    await runtime.db[JOBS].update_one({"_id": ids[0]}, {"$set": {"spec": {"damaged": True}}})
    return ids[0], ids[1]


async def test_a_damaged_job_does_not_stop_the_sweep_of_the_others(runtime: Runtime) -> None:
    damaged, healthy = await stuck_jobs(runtime)

    recovered, _ = await sweep(runtime)

    assert recovered == 1
    requeued = await runtime.jobs.get(healthy)
    assert requeued is not None
    assert requeued.status is JobStatus.NOT_PROCESSED
    failed = await runtime.jobs.get(damaged)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.error == "Job could not be recovered: its stored record is damaged"


async def test_the_sweeps_run_on_their_own_while_firing_fails(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, healthy = await stuck_jobs(runtime)

    async def failing_pass(*_: object) -> int:
        raise RuntimeError("a firing pass that always fails")

    monkeypatch.setattr(scheduler_app, "fire_due", failing_pass)
    settings = runtime.settings.model_copy(
        update={
            "scheduler": runtime.settings.scheduler.model_copy(
                update={"poll_interval_seconds": 0.05, "sweep_interval_seconds": 0.05}
            )
        }
    )
    stopping = asyncio.Event()
    serving = asyncio.create_task(scheduler_app.serve(runtime, settings, stopping))
    try:
        async with asyncio.timeout(20):
            while (job := await runtime.jobs.get(healthy)) and job.status is not JobStatus.NOT_PROCESSED:
                await asyncio.sleep(0.05)
    finally:
        stopping.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 10)
    assert serving.done()


async def test_a_paused_request_shows_why_and_its_owners_edit_resumes_it(
    servers: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = isolated(servers)
    async with (
        serving(settings) as url,
        httpx.AsyncClient(base_url=url, headers={"X-User-Id": "alice", "X-Tenant-Id": "acme"}) as alice,
    ):
        created = (await alice.post("/exports", json=SEED_000)).json()
        store: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            settings.mongo.uri.get_secret_value(), tz_aware=True
        )
        due = utcnow() - timedelta(seconds=1)
        every_hour = {"periodicity": "PT1H", "startAt": due - HOUR, "schedule.nextRunAt": due}
        await store[settings.mongo.database][REQUESTS].update_one(
            {"_id": created["id"]}, {"$set": every_hour}
        )
        await store.close()
        unplannable(monkeypatch, created["id"])
        runtime = Runtime.build(settings)
        await runtime.prepare()
        try:
            assert await fire_due(runtime, shard_order()) == 0
        finally:
            await runtime.close()

        shown = (await alice.get(f"/exports/{created['id']}")).json()
        assert shown["status"] == "paused"
        assert shown["nextRunTimes"] == []
        assert shown["pausedReason"] == (
            f"paused: its run at {due.isoformat()} could not be planned because a date, period or "
            "window in it is out of range; edit the request to resume"
        )
        assert shown["pausedAt"]
        listed = (await alice.get("/exports", params={"status": "paused"})).json()
        assert [request["id"] for request in listed["items"]] == [created["id"]]
        assert (await alice.get("/exports", params={"status": "active"})).json()["items"] == []

        resumed = await alice.put(f"/exports/{created['id']}", json=SEED_000)
        assert resumed.status_code == 200, resumed.text
        shown = (await alice.get(f"/exports/{created['id']}")).json()
        assert shown["status"] == "active"
        assert "pausedReason" not in shown
        assert len(shown["nextRunTimes"]) == 5


async def test_a_batch_of_large_requests_still_fires(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs whose events together pass what one document may hold are queued in several outbox
    entries, not one that the store refuses batch after batch. The store's 16 MiB is scaled down
    to 1 MiB here (the split is the same; the suite's store need not take 20 MB transactions)."""
    monkeypatch.setattr(unit_of_work, "ENTRY_BYTES", 1024 * 1024)
    now = utcnow()
    # 20 messages of 10,000 characters: about 200 kB, the largest request the API takes.
    message = {"medium": "email", "text": "L" * 10_000, "recipients": ["ops@localhost"]}
    notification = {"messages": [message] * 20}
    documents: list[dict[str, Any]] = []
    index = 0
    while len(documents) < 12:
        index += 1
        request_id = f"large-{index:04d}"
        if schedule_shard(request_id) != 0:
            continue
        documents.append(
            stored(request_id, f"user{index}", now, type="oneTime", startAt=now, notification=notification)
        )
    await runtime.db[REQUESTS].insert_many(documents)

    assert await fire_due(runtime, [0], now) == len(documents)

    assert await runtime.db[JOBS].count_documents({}) == len(documents)
    entries = [len(bson.encode(entry)) async for entry in runtime.db[OUTBOX].find()]
    assert len(entries) > 2
    assert max(entries) < 2 * 1024 * 1024  # one entry's limit plus at most one run's event


async def test_a_request_that_fails_its_batch_for_another_reason_is_paused_alone(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    documents = [stored(f"same-{i:03d}", f"user{i}", now, type="oneTime", startAt=now) for i in range(60)]
    shard = documents[0]["schedule"]["shard"]
    documents = [document for document in documents if document["schedule"]["shard"] == shard]
    assert len(documents) > 1
    await runtime.db[REQUESTS].insert_many(documents)
    poison = documents[0]["_id"]
    add_many = runtime.jobs.add_many

    async def store_refusing_one(jobs: list[dict[str, Any]], session: Any) -> None:
        if any(job["requestId"] == poison for job in jobs):  # a fault no planning could foresee
            raise RuntimeError("refused by the store")
        await add_many(jobs, session)

    monkeypatch.setattr(runtime.jobs, "add_many", store_refusing_one)
    assert await fire_due(runtime, [shard], now) == len(documents) - 1

    record = await runtime.requests.get("acme", poison)
    assert record is not None
    assert record.status == "paused"
    assert record.paused_reason == (
        "paused: it could not be fired because of an internal error; edit the request to resume"
    )
    assert [e["data"]["action"] for e in await iam_events(runtime)] == ["pause"]

"""Two scheduler processes, one SIGKILLed mid-way: every scheduled time still fires exactly
once, and every job is announced."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import Counter
from datetime import datetime, timedelta

from pymongo import AsyncMongoClient

from exporter.adapters.mongo.client import JOBS, REQUESTS, Document, ensure_indexes
from exporter.adapters.mongo.requests import request_document
from exporter.contracts.base import utcnow
from exporter.contracts.request import ExportRequest
from exporter.domain.schedule import first_run_at, occurrence
from exporter.runtime import Runtime
from exporter.settings import Settings
from exporter.topics import Topic
from tests.benchmarks.harness import launch
from tests.own_database import own_database
from tests.topic_reader import all_values, json_field

REQUESTS_COUNT = 1000
PERIOD = timedelta(seconds=6)
# The relays' leases on the events their replica committed.
LEASE_SECONDS = 2.0


def recurring(tenant: str, index: int, created: datetime) -> ExportRequest:
    return ExportRequest.model_validate(
        {
            "id": f"{tenant}-{index:04d}",
            "tenant": tenant,
            "owner": "owner",
            "createdAt": created,
            "updatedAt": created,
            "type": "recurring",
            "periodicity": f"PT{PERIOD.seconds}S",
            "catchUp": "all",
            "format": {"extension": "csv"},
            "items": [{"params": {"target": {"value": f"urn:x:dev{index}:power"}}}],
        }
    )


async def published_job_ids(settings: Settings, tenant: str) -> Counter[str]:
    return Counter(
        json_field(value, "data", "jobId")
        for value in await all_values(settings, Topic.EXPORT_REQUESTED)
        if json_field(value, "tenant") == tenant
    )


async def check_replicas(servers: Settings) -> int:
    settings = own_database(
        servers,
        "sched",
        scheduler={"poll_interval_seconds": 0.1},
        # A killed replica's own unpublished events are re-published once their lease runs out.
        outbox={"lease_seconds": LEASE_SECONDS},
        # No renderer takes these jobs: every run must be queued, not skipped by the quota or
        # the target rule (tests/security/test_quotas.py tests those), even when the survivor takes
        # two minutes (20 periods) to catch up on a loaded machine.
        api={"max_active_jobs_per_user": 100 * REQUESTS_COUNT, "one_active_job_per_target": False},
    )
    tenant = f"replicas{uuid.uuid4().hex[:6]}"
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongo.uri.get_secret_value(), tz_aware=True
    )
    db = client[settings.mongo.database]
    await ensure_indexes(db)
    created = utcnow()
    requests = [recurring(tenant, index, created) for index in range(REQUESTS_COUNT)]
    await db[REQUESTS].insert_many([request_document(r, first_run_at(r)) for r in requests])

    replicas = [launch(settings, "scheduler"), launch(settings, "scheduler")]
    try:
        await asyncio.sleep(2.5 * PERIOD.total_seconds())  # two periods fired by both
        os.kill(replicas[0].pid, signal.SIGKILL)  # mid-way: leases, maybe a transaction, held
        replicas[0].wait()
        killed = utcnow()
        # The survivor carries on; the dead replica's open transaction, if any, is reaped (after
        # EXPORTER_LOCAL__MONGO_TRANSACTION_LIFETIME_SECONDS). A request not fired yet (both
        # replicas slow to start on a loaded machine) is waited for too.
        behind = {"$or": [{"schedule.lastRunAt": None}, {"schedule.lastRunAt": {"$lte": killed + PERIOD}}]}
        async with asyncio.timeout(120):
            while await db[REQUESTS].count_documents({"tenant": tenant, **behind}):
                await asyncio.sleep(1)
    finally:
        for replica in replicas:
            replica.kill()
            replica.wait()

    # Both died without a word: any relay publishes what they committed once their leases end.
    await asyncio.sleep(LEASE_SECONDS)
    relay = Runtime.build(settings)
    await relay.start(relay=False)
    try:
        await relay.relay.publish_pending()
    finally:
        await relay.stop()

    jobs = [job async for job in db[JOBS].find({"tenant": tenant}, {"requestId": 1, "scheduledAt": 1})]
    fired: dict[str, list[datetime]] = {request.id: [] for request in requests}
    for job in jobs:
        fired[job["requestId"]].append(job["scheduledAt"])
    for request in requests:
        times = sorted(fired[request.id])
        count = len(times)
        expected = [occurrence(created, request.periodicity or "", k, "UTC") for k in range(1, count + 1)]
        assert times == expected, f"{request.id}: gaps or strays in {times}"
    assert len(jobs) >= 3 * REQUESTS_COUNT

    published = await published_job_ids(settings, tenant)
    assert set(published) == {job["_id"] for job in jobs}
    # The database is left in place: the killed replica's transaction may hold its collections
    # until the store reaps it, and a drop would wait for that.
    await client.close()
    return len(jobs)


async def test_a_replica_killed_mid_way_loses_and_repeats_no_run(servers: Settings) -> None:
    assert await check_replicas(servers) >= 3 * REQUESTS_COUNT

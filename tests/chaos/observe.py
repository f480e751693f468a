"""What the system holds at the end of a chaos run, read straight from the servers and sinks
(not through the proxies), gathered for the checks in ``invariants.py``."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from exporter.adapters.mongo.client import GRANTS, JOBS, MEASUREMENTS, REQUESTS, Document, connect, database
from exporter.adapters.storage import ObjectStore
from exporter.contracts.request import ExportRequest, ExportType
from exporter.domain.job_life import FINAL_STATUSES
from exporter.domain.schedule import first_run_at, next_run_after
from exporter.notifications.policy import NOTIFIED_OUTCOMES
from exporter.settings import Settings
from exporter.topics import Topic
from tests.chaos.invariants import Grid, StoredObject
from tests.chaos.workload import Done
from tests.topic_reader import json_object, topic_reader

READ_BACK_BYTES = 5 * 1024 * 1024  # larger objects are compared by size only
REQUEUED = ":attempt-"  # in the id of a re-queued job's export.requested (scheduler/sweeping.py)
# Only these IAM actions change a request (and its version); a cancel or run announces a job.
CHANGES = {"create", "update", "delete", "pause"}


@dataclass
class Observed:
    jobs: list[Document] = field(default_factory=list)
    grids: dict[str, Grid] = field(default_factory=dict)
    fired: Counter[str] = field(default_factory=Counter)  # distinct export.requested ids by job
    completed: Counter[str] = field(default_factory=Counter)  # distinct export.completed ids by job
    objects: dict[str, StoredObject] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    iam: Counter[tuple[str, int]] = field(default_factory=Counter)
    readings: dict[str, int] = field(default_factory=dict)
    grants: dict[str, int] = field(default_factory=dict)


async def stored_readings(settings: Settings) -> dict[str, int]:
    """Readings in live segments, by publisher."""
    client = connect(settings)
    try:
        pipeline: list[Document] = [
            {"$match": {"retiredBy": {"$exists": False}}},
            {"$group": {"_id": "$publisher", "readings": {"$sum": "$count"}}},
        ]
        rows = await (await database(client, settings)[MEASUREMENTS].aggregate(pipeline)).to_list()
        return {str(row["_id"]): int(row["readings"]) for row in rows}
    finally:
        await client.close()


async def unfinished_jobs(settings: Settings) -> int:
    """Jobs not yet terminal, or done or failed with notifications still in flight: the run settles
    first (a cancelled job has nothing to notify)."""
    client = connect(settings)
    try:
        jobs = database(client, settings)[JOBS]
        active = {"status": {"$nin": [status.value for status in FINAL_STATUSES]}}
        notified = [status.value for status in NOTIFIED_OUTCOMES]
        sending = {
            "status": {"$in": notified},
            "notifications.status": {"$in": ["pending", "sending", "retrying"]},
        }
        return await jobs.count_documents({"$or": [active, sending]})
    finally:
        await client.close()


async def fired_until(settings: Settings, seconds: float = 120.0) -> tuple[datetime, float]:
    """An instant up to which every live request's due runs have fired (the schedulers moved
    every next run past it), and how many seconds the schedulers were behind before they got there.
    Runs after it may be due unfired when the requests are closed: they are not judged.
    """
    client = connect(settings)
    began = time.monotonic()
    try:
        requests = database(client, settings)[REQUESTS]
        while True:
            probe = datetime.now(UTC) - timedelta(seconds=1)
            behind = {"deletedAt": None, "schedule.nextRunAt": {"$lte": probe}}
            if await requests.count_documents(behind) == 0 or time.monotonic() - began > seconds:
                return probe, time.monotonic() - began
            await asyncio.sleep(0.5)
    finally:
        await client.close()


def grid(request: ExportRequest, until: datetime, judged: bool) -> Grid:
    """The request's scheduled times up to ``until``."""
    if request.type is ExportType.ONE_TIME:
        return Grid(once=True)
    times: set[datetime] = set()
    at: datetime | None = first_run_at(request)
    while at is not None and at <= until:
        times.add(at)
        at = next_run_after(request, at)
    return Grid(frozenset(times), complete=judged)


async def observe(settings: Settings, done: Done, settle_seconds: float = 10.0) -> Observed:
    seen = Observed()
    seen.objects = await _objects(settings)  # before the jobs: every object listed has its job by then
    client = connect(settings)
    try:
        db = database(client, settings)
        seen.jobs = await db[JOBS].find({}, {"spec": 0}).to_list()
        until = datetime.now(UTC) - timedelta(seconds=settle_seconds)
        for document in await db[REQUESTS].find({}).to_list():
            request = ExportRequest.model_validate(
                {"id": document["_id"], **{k: v for k, v in document.items() if k not in {"_id", "schedule"}}}
            )
            created = done.requests.get(request.id)
            judged = created is not None and not (created.edited or created.deleted)
            judged = judged and not document.get("schedule", {}).get("pausedAt")
            # A request closed at the end is judged up to the instant all due runs had fired.
            end = until if request.deleted_at is None else min(until, done.fired_until or request.deleted_at)
            judged = judged and (request.deleted_at is None or bool(created and created.closed))
            seen.grids[request.id] = grid(request, end, judged)
            seen.versions[request.id] = request.version
        seen.grants = {str(g["_id"]): int(g.get("version", 0)) for g in await db[GRANTS].find({}).to_list()}
    finally:
        await client.close()
    seen.readings = await stored_readings(settings)
    # A firing's event id is the job id; a stuck job re-queued is announced again as
    # "<job id>:attempt-N": the same job tried again, not a second firing.
    seen.fired = await _distinct_events(settings, Topic.EXPORT_REQUESTED, ("data", "jobId"), REQUEUED)
    seen.completed = await _distinct_events(settings, Topic.EXPORT_COMPLETED, ("data", "jobId"))
    seen.iam = await _iam_events(settings)
    return seen


async def _records(settings: Settings, topic: Topic) -> list[dict[str, Any]]:
    """Every JSON record on ``topic``, read until it has been quiet for a few polls."""
    values: list[dict[str, Any]] = []
    async with topic_reader(settings, topic.value) as consumer:
        quiet = 0
        while quiet < 6:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            records = [record for records in batch.values() for record in records]
            quiet = 0 if records else quiet + 1
            values.extend(json_object(record.value) for record in records)
    return values


async def _distinct_events(
    settings: Settings, topic: Topic, path: tuple[str, str], skip: str | None = None
) -> Counter[str]:
    """How many distinct event ids name each job: a re-published event (same id) counts once;
    ids containing ``skip`` are not counted."""
    ids: dict[str, set[str]] = {}
    for event in await _records(settings, topic):
        job_id = (event.get(path[0]) or {}).get(path[1])
        if isinstance(job_id, str) and not (skip and skip in str(event.get("id"))):
            ids.setdefault(job_id, set()).add(str(event.get("id")))
    return Counter({job_id: len(found) for job_id, found in ids.items()})


async def _iam_events(settings: Settings) -> Counter[tuple[str, int]]:
    ids: dict[tuple[str, int], set[str]] = {}
    for event in await _records(settings, Topic.IAM_POLICY_UPDATED):
        data = event.get("data") or {}
        if event.get("type", "").endswith("policy-updated.v1") and data.get("action") in CHANGES:
            request_id = str(data.get("resource", "")).rsplit(":", 1)[-1].rsplit("/", 1)[-1]
            ids.setdefault((request_id, int(data.get("version", 0))), set()).add(str(event.get("id")))
    return Counter({change: len(found) for change, found in ids.items()})


async def _objects(settings: Settings) -> dict[str, StoredObject]:
    store = ObjectStore(settings.storage)
    found: dict[str, StoredObject] = {}

    async def one(key: str) -> None:
        stat = await store.stat(key)
        if stat is not None:
            data = await store.read(key) if stat.size <= READ_BACK_BYTES else None
            found[key] = StoredObject(stat.size, data)

    keys = await store.list_keys("")
    for start in range(0, len(keys), 16):
        await asyncio.gather(*(one(key) for key in keys[start : start + 16]))
    return found

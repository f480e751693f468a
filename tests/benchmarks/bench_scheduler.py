"""``make bench-scheduler``: the scheduler firing under load, with two replicas, end to end.

Burst: 10,000 one-time requests all due at the same instant; two ``python -m scheduler``
processes fire them; the time from the due instant to the last ``export.requested`` received
by a Kafka consumer is the figure (target < 10 s), beside the store's own time for the same
writes without any scheduler (the ceiling on this machine). Steady: recurring requests spread over a
period; the fire lag is each ``export.requested``'s arrival minus its scheduled time (p50/p99).
Duplicates: job ids received more than once (target 0), and jobs per (request, time) in the
store (always 1: the id derives from both).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pymongo.asynchronous.client_session import AsyncClientSession

from exporter.adapters.mongo.client import JOBS, REQUESTS, connect, database, ensure_indexes, in_transaction
from exporter.adapters.mongo.requests import SCHEDULE_SHARDS, Advance, RequestRecord, request_document
from exporter.contracts.base import utcnow
from exporter.contracts.request import ExportRequest
from exporter.domain.schedule import first_run_at
from exporter.runtime import Runtime
from exporter.service_layer.dispatch import queued_job
from exporter.settings import Settings
from exporter.topics import Topic
from tests.benchmarks.harness import launch, local_servers, percentile
from tests.topic_reader import topic_reader

TARGET_BURST_SECONDS = 10.0
# How long reading goes on after the last expected job, to catch late duplicates.
DUPLICATE_WATCH_SECONDS = 3.0


def request(tenant: str, index: int, created: datetime, **fields: object) -> ExportRequest:
    return ExportRequest.model_validate(
        {
            "id": f"{tenant}-{index:05d}",
            "tenant": tenant,
            "owner": f"user{index % 50}",
            "createdAt": created,
            "updatedAt": created,
            "format": {"extension": "csv"},
            "items": [{"params": {"target": {"value": f"urn:x:dev{index}:power"}, "period": "PT1H"}}],
            **fields,
        }
    )


@contextlib.contextmanager
def replicas(settings: Settings, count: int) -> Iterator[None]:
    children = [launch(settings, "scheduler") for _ in range(count)]
    try:
        yield
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)


@dataclass
class Arrivals:
    """Per job: its scheduled time and when each of its ``export.requested`` arrived (epoch s)."""

    scheduled: dict[str, float] = field(default_factory=dict)
    received: dict[str, list[float]] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return sum(len(times) - 1 for times in self.received.values())

    def lags(self) -> list[float]:
        return sorted(times[0] - self.scheduled[job] for job, times in self.received.items())


async def receive(settings: Settings, tenant: str, expected: int, seconds: float) -> Arrivals:
    """Reads ``export.requested`` until ``expected`` distinct jobs arrived, then a few seconds
    more, so that late duplicates are counted too."""
    arrivals = Arrivals()
    async with topic_reader(settings, Topic.EXPORT_REQUESTED) as consumer:
        async with asyncio.timeout(seconds):
            until = float("inf")
            while time.time() < until:
                batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
                now = time.time()
                for record in (record for records in batch.values() for record in records):
                    event = json.loads(record.value)
                    if event["tenant"] == tenant:
                        job = event["data"]["jobId"]
                        arrivals.received.setdefault(job, []).append(now)
                        scheduled = datetime.fromisoformat(event["data"]["scheduledAt"])
                        arrivals.scheduled[job] = scheduled.timestamp()
                if len(arrivals.received) >= expected and until == float("inf"):
                    until = now + DUPLICATE_WATCH_SECONDS
    return arrivals


async def seed(settings: Settings, requests: list[ExportRequest]) -> None:
    client = connect(settings)
    db = database(client, settings)
    await ensure_indexes(db)
    for start in range(0, len(requests), 2000):
        chunk = requests[start : start + 2000]
        await db[REQUESTS].insert_many([request_document(r, first_run_at(r)) for r in chunk])
    await client.close()


async def jobs_per_run(settings: Settings, tenant: str) -> Counter[tuple[str, datetime]]:
    client = connect(settings)
    cursor = database(client, settings)[JOBS].find({"tenant": tenant}, {"requestId": 1, "scheduledAt": 1})
    counts: Counter[tuple[str, datetime]] = Counter()
    async for job in cursor:
        counts[job["requestId"], job["scheduledAt"]] += 1
    await client.close()
    return counts


async def burst(settings: Settings, count: int) -> tuple[float, int, int]:
    tenant = "burst"
    due = utcnow() + timedelta(seconds=15)  # time to seed and start the replicas
    await seed(settings, [request(tenant, i, utcnow(), type="oneTime", startAt=due) for i in range(count)])
    with replicas(settings, 2):
        arrivals = await receive(settings, tenant, count, seconds=300)
    last = max(times[0] for times in arrivals.received.values())
    duplicates = arrivals.duplicates
    store_duplicates = sum(n - 1 for n in (await jobs_per_run(settings, tenant)).values())
    return last - due.timestamp(), duplicates, store_duplicates


async def steady(settings: Settings, count: int, period_seconds: int, periods: int) -> Arrivals:
    tenant = "steady"
    # No renderer runs here: each request's later runs would find its first still queued.
    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"one_active_job_per_target": False})}
    )
    created = utcnow() + timedelta(seconds=10)
    # Anchors spread over the period, so runs come due evenly rather than all at once.
    spread = [created + timedelta(seconds=period_seconds * i / count) for i in range(count)]
    await seed(
        settings,
        [
            request(
                tenant, i, created, type="recurring", periodicity=f"PT{period_seconds}S", startAt=spread[i]
            )
            for i, at in enumerate(spread)
        ],
    )
    expected = count * periods
    with replicas(settings, 2):
        return await receive(settings, tenant, expected, seconds=60 + period_seconds * (periods + 2))


async def store_ceiling(settings: Settings, count: int) -> float:
    """Seconds the store alone takes for a burst's writes: per shard and batch, one transaction
    that reads the due requests, moves their schedules on, inserts their (ready-made) jobs and
    one outbox entry. No planning, no Kafka, one writer: what no scheduler can beat here."""
    settings = settings.model_copy(
        update={"mongo": settings.mongo.model_copy(update={"database": "ceiling"})}
    )
    due = utcnow()
    requests = [request("ceiling", i, due, type="oneTime", startAt=due) for i in range(count)]
    await seed(settings, requests)
    ready = {r.id: queued_job(r, due, "ceiling") for r in requests}
    runtime = Runtime.build(settings)
    batch_size = settings.scheduler.batch_size

    async def write(shard: int, session: AsyncClientSession) -> int:
        records = await runtime.requests.due(shard, due, batch_size, session)
        if records:
            ids = [record.request.id for record in records if isinstance(record, RequestRecord)]
            await runtime.requests.advance_many([Advance(i, None, due) for i in ids], session)
            await runtime.jobs.add_many([ready[i][0] for i in ids], session)
            await runtime.relay.outbox.add(runtime.relay.held_many([ready[i][1] for i in ids]), session)
        return len(records)

    started = time.perf_counter()
    for shard in range(SCHEDULE_SHARDS):
        while await in_transaction(runtime.mongo, functools.partial(write, shard)):
            pass
    took = time.perf_counter() - started
    await runtime.close()
    return took


async def benchmark(settings: Settings, count: int, steady_count: int) -> None:
    ceiling = await store_ceiling(settings, count)
    took, duplicates, store_duplicates = await burst(settings, count)
    print(
        f"burst   {count} requests due at one instant, 2 replicas: last export.requested "
        f"{took:.2f} s after the due time ({count / took:,.0f} runs/s); the store alone, same writes: "
        f"{ceiling:.2f} s ({count / ceiling:,.0f} runs/s)"
    )
    steady_arrivals = await steady(settings, steady_count, period_seconds=10, periods=3)
    lags, steady_duplicates = steady_arrivals.lags(), steady_arrivals.duplicates
    print(
        f"steady  {steady_count} recurring requests every 10 s, 2 replicas: fire lag "
        f"p50 {percentile(lags, 0.5) * 1000:.0f} ms, p99 {percentile(lags, 0.99) * 1000:.0f} ms "
        f"over {len(lags)} runs"
    )
    total_duplicates = duplicates + steady_duplicates
    print(f"duplicates: {total_duplicates} repeated export.requested, {store_duplicates} repeated jobs")
    verdict = "met" if took < TARGET_BURST_SECONDS else "NOT met"
    print(
        f"SUMMARY burst of {count}: {took:.1f} s (target < {TARGET_BURST_SECONDS:.0f} s: {verdict}; "
        f"store ceiling {ceiling:.1f} s); "
        f"steady lag p50 {percentile(lags, 0.5) * 1000:.0f} ms p99 {percentile(lags, 0.99) * 1000:.0f} ms; "
        f"duplicates {total_duplicates + store_duplicates} (target 0: "
        f"{'met' if total_duplicates + store_duplicates == 0 else 'NOT met'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--steady", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=Settings().scheduler.batch_size)
    arguments = parser.parse_args()
    with local_servers() as (settings, _):
        tuned = settings.model_copy(
            update={
                "scheduler": settings.scheduler.model_copy(
                    update={"poll_interval_seconds": 0.1, "batch_size": arguments.batch_size}
                ),
                # Every run queued (no renderer empties the queue), the quota still counted.
                "api": settings.api.model_copy(update={"max_active_jobs_per_user": arguments.requests}),
            }
        )
        asyncio.run(benchmark(tuned, arguments.requests, arguments.steady))


if __name__ == "__main__":
    main()

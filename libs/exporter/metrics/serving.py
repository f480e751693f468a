"""How a process serves its metrics: a listener of its own, and the gauges that need a query.

The listener is a small asyncio server on the process's own event loop rather than
prometheus_client's threaded one: no thread to share the interpreter with between scrapes, and a
scrape (about 0.3 ms, ``make bench-metrics``) once per scrape interval.

Gauges that need MongoDB or Kafka (outbox, jobs by status, due backlog, consumer lag) are read
by a background task every ``refresh_seconds``, each read cut off after
``query_timeout_seconds``, rather than on scrape: a scrape stays a copy of numbers in memory
however big the store, however many Prometheus replicas scrape, and a slow store costs one
bounded query per interval instead of a scrape timeout. The scheduler reads the store-wide
gauges; each consumer reads the lag of its own groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pymongo
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.asynchronous.database import AsyncDatabase

from exporter import metrics
from exporter.adapters.kafka import committed_lag
from exporter.adapters.mongo.client import JOBS, OUTBOX, REQUESTS, Document
from exporter.adapters.mongo.outbox import OutboxRepository
from exporter.adapters.mongo.requests import SCHEDULE_SHARDS
from exporter.contracts.base import utcnow
from exporter.domain.job_life import JobStatus
from exporter.settings import KafkaSettings
from exporter.settings.metrics import MetricsSettings

log = logging.getLogger(__name__)
Reading = Callable[[], Awaitable[None]]
REQUEST_SECONDS = 5.0


@dataclass
class Listener:
    server: asyncio.Server

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def listen(settings: MetricsSettings) -> Listener | None:
    """Serves the registry on ``settings.host:port``, if a port is set. A port already taken is
    logged, not raised: the request-api's other workers (``api.workers`` > 1) share their
    settings, and the first one to bind serves its own figures."""
    if settings.port is None:
        return None
    try:
        server = await asyncio.start_server(answer_scrape, settings.host, settings.port)
    except OSError as error:
        log.warning("metrics port %s:%d not served here: %s", settings.host, settings.port, error)
        return None
    log.info("metrics at http://%s:%d/metrics", settings.host, settings.port)
    return Listener(server)


async def answer_scrape(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One HTTP exchange, then the connection closes: all a scraper needs. The request head is
    bounded by the reader's limit (64 KiB) and ``REQUEST_SECONDS``."""
    try:
        async with asyncio.timeout(REQUEST_SECONDS):
            head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b" ", 2)
        if method == b"GET" and target.split(b"?", 1)[0] == b"/metrics":
            status, body = "200 OK", generate_latest(metrics.REGISTRY)
        else:
            status, body = "404 Not Found", b"GET /metrics\n"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE_LATEST}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    except (TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        pass  # a client that is not a scraper: nothing to answer
    finally:
        writer.close()


async def refresh(readings: Sequence[Reading], settings: MetricsSettings, stopping: asyncio.Event) -> None:
    """Each reading every ``refresh_seconds`` until ``stopping``; one that fails or overruns
    leaves its gauges as they were (a scrape shows the last values read) and is logged once."""
    failing: set[int] = set()
    while not stopping.is_set():
        for number, reading in enumerate(readings):
            try:
                async with asyncio.timeout(settings.query_timeout_seconds):
                    with pymongo.timeout(settings.query_timeout_seconds):
                        await reading()
            except Exception as error:
                if number not in failing:
                    log.warning(
                        "a metrics reading failed (%s: %s); keeping its last values",
                        type(error).__name__,
                        error,
                    )
                failing.add(number)
            else:
                failing.discard(number)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.refresh_seconds)


def store_readings(db: AsyncDatabase[Document]) -> list[Reading]:
    """The store-wide gauges: the outbox, jobs by status, the scheduler's due backlog."""
    return [lambda: read_outbox(db), lambda: read_jobs(db), lambda: read_due(db)]


def lag_readings(settings: KafkaSettings, groups: Sequence[str]) -> list[Reading]:
    return [lambda: read_lag(settings, list(groups))]


async def read_outbox(db: AsyncDatabase[Document], now: datetime | None = None) -> None:
    oldest = await db[OUTBOX].find_one({}, {"createdAt": 1}, sort=[("createdAt", pymongo.ASCENDING)])
    metrics.OUTBOX_PENDING.set(await OutboxRepository(db).pending_count())
    age = ((now or utcnow()) - oldest["createdAt"]).total_seconds() if oldest else 0.0
    metrics.OUTBOX_OLDEST_AGE.set(max(0.0, age))


async def read_jobs(db: AsyncDatabase[Document]) -> None:
    """One ``$group`` over the jobs (kept ``scheduler.retention_days``); every status is set, a
    missing one to 0, so a status that empties does not keep its last count."""
    counts = {
        row["_id"]: row["n"]
        async for row in await db[JOBS].aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}])
    }
    for status in JobStatus:
        metrics.JOBS.labels(status.value).set(counts.get(status.value, 0))


async def read_due(db: AsyncDatabase[Document], now: datetime | None = None) -> None:
    """Counted on the scheduler's own index (shard, next run)."""
    due = {
        "schedule.shard": {"$in": list(range(SCHEDULE_SHARDS))},
        "schedule.nextRunAt": {"$lte": now or utcnow()},
    }
    metrics.DUE_BACKLOG.set(await db[REQUESTS].count_documents({**due, "deletedAt": None}))


async def read_lag(settings: KafkaSettings, groups: list[str]) -> None:
    for group in groups:
        for partition, lag in (await committed_lag(settings, group)).items():
            metrics.CONSUMER_LAG.labels(
                group, metrics.topic_label(partition.topic), str(partition.partition)
            ).set(lag)

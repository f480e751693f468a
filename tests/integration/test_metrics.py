"""Each metric family moves when its event happens, read from the services' own endpoints.

The five services run as child processes (as ``make run`` starts them) on the session's
servers, each with its metrics listener on the port ``LocalServices`` gave it; every test makes
its event happen through the system's real inputs (HTTP, Kafka) and compares a sample before
and after.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import generate_latest
from pydantic import SecretStr

from exporter import metrics
from exporter.adapters.kafka import client_options, committed_lag
from exporter.adapters.mongo.client import JOBS, OUTBOX, REQUESTS
from exporter.contracts.base import utcnow
from exporter.contracts.events import MeasurementsPublished
from exporter.contracts.ingest import MeasurementPack, MeasurementRecord
from exporter.local.demo import (
    DEMO_EXPORT,
    DEMO_USER,
    DEVICE,
    START,
    demo_measurements,
    ingested,
    publish,
    send_record,
)
from exporter.local.servers import free_ports
from exporter.local.services import LocalServices
from exporter.metrics.serving import read_lag, store_readings
from exporter.runtime import Runtime
from exporter.settings import Settings
from exporter.settings.notifier import ANY_TENANT, LOCAL_DESTINATIONS, TelegramSettings
from exporter.topics import Topic
from tests.metric_samples import sample, scrape
from tests.own_database import own_database

pytestmark = pytest.mark.servers
WAIT_SECONDS = 60.0
TELEGRAM_CHAT = "4242"
TEXT_METRIC = "mode"


@pytest.fixture(scope="module")
def services(servers: Settings) -> Iterator[LocalServices]:
    # Gauges refreshed every second, so a test waits for them no longer than that.
    # Several exports of the same data at once: no 409 for a target already being exported.
    # Telegram: a bot whose API is a port where nothing listens, tried once: a delivery that fails.
    destinations = LOCAL_DESTINATIONS.model_copy(update={"telegram_chats": [TELEGRAM_CHAT]})
    [closed] = free_ports(1)
    telegram = TelegramSettings(
        base_url=f"http://127.0.0.1:{closed}", bot_token=SecretStr("123:metrics-test")
    )
    settings = own_database(
        servers,
        "metrics",
        metrics={"refresh_seconds": 1.0},
        api={"one_active_job_per_target": False},
        notifier={"max_attempts": 1, "telegram": telegram, "tenants": {ANY_TENANT: destinations}},
    )
    running = LocalServices(settings)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
async def api(services: LocalServices) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-User-Id": DEMO_USER}
    async with httpx.AsyncClient(base_url=services.api_url, headers=headers, timeout=10) as client:
        yield client


async def moved(
    services: LocalServices, service: str, name: str, *, by: float = 1, **labels: str
) -> Callable[[], Awaitable[None]]:
    """Reads the sample now; the returned check waits until it grew by ``by``."""
    url = services.metrics_urls()[service]
    before = sample(await scrape(url), name, **labels)

    async def check() -> None:
        now = before
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                while (now := sample(await scrape(url), name, **labels)) < before + by:
                    await asyncio.sleep(0.2)
        except TimeoutError:
            pytest.fail(f"{service}: {name}{labels} stayed at {now} (was {before}, wanted +{by})")

    return check


async def test_http_requests_by_route_template_and_status(
    services: LocalServices, api: httpx.AsyncClient
) -> None:
    listed = await moved(
        services, "request_api", "exporter_http_requests_total", route="/exports", status="200"
    )
    timed = await moved(
        services, "request_api", "exporter_http_request_duration_seconds_count", route="/jobs/{job_id}"
    )
    unknown = await moved(
        services, "request_api", "exporter_http_requests_total", route="unmatched", status="404"
    )
    assert (await api.get("/exports")).status_code == 200
    assert (await api.get("/jobs/no-such-job")).status_code == 404
    assert (await api.get("/no/such/path/c4f1")).status_code == 404
    await listed()
    await timed()
    await unknown()
    # The paths themselves never become label values.
    assert "no-such-job" not in await scrape(services.metrics_urls()["request_api"])


async def test_api_metrics_path_needs_a_token(api: httpx.AsyncClient) -> None:
    """Without ``metrics.token`` (the default) the public port does not serve them."""
    assert (await api.get("/metrics")).status_code == 404
    assert "/metrics" not in (await api.get("/openapi.json")).text


async def test_consumed_and_dead_lettered_per_topic(services: LocalServices, servers: Settings) -> None:
    consumed = await moved(
        services, "ingestor", "exporter_received_messages_total", handler=Topic.THINGS.value
    )
    dead = await moved(
        services, "ingestor", "exporter_dead_lettered_messages_total", topic=Topic.THINGS.value
    )
    await send_record(servers, Topic.THINGS.value, DEVICE, b"not json", [])
    await consumed()
    await dead()


async def test_ingest_records_and_flush_sizes(services: LocalServices, servers: Settings) -> None:
    topic = Topic.MEASUREMENTS.value
    stored = await moved(services, "ingestor", "exporter_ingested_records_total", topic=topic)
    flushes = await moved(services, "ingestor", "exporter_ingest_flush_records_count")
    await publish(services.settings, topic, DEVICE, demo_measurements().to_wire())
    await stored()
    await flushes()


async def test_export_fires_renders_and_delivers(services: LocalServices, api: httpx.AsyncClient) -> None:
    """One export rendered as CSV and mailed; another, fired by the scheduler a moment later and
    sent where nothing answers, so its delivery fails; a third that cannot be rendered, so its
    job fails."""
    for readings in (demo_measurements(), text_readings()):
        await publish(services.settings, Topic.MEASUREMENTS.value, DEVICE, readings.to_wire())
    await ingested(services.settings)
    checks = [
        await moved(services, "scheduler", "exporter_scheduler_fire_lag_seconds_count"),
        await moved(services, "renderer", "exporter_jobs_finished_total", status="done", format="csv"),
        await moved(services, "renderer", "exporter_jobs_finished_total", status="failed", format="csv"),
        await moved(services, "renderer", "exporter_render_duration_seconds_count", format="csv"),
        await moved(services, "renderer", "exporter_render_rows_total", format="csv", by=60),
        await moved(services, "renderer", "exporter_render_bytes_total", format="csv", by=100),
        await moved(
            services, "renderer", "exporter_received_messages_total", handler="export.requested", by=3
        ),
        await moved(services, "notifier", "exporter_deliveries_total", medium="email", outcome="sent"),
        await moved(services, "notifier", "exporter_deliveries_total", medium="telegram", outcome="failed"),
    ]
    # One after another: they share a target, and a run whose target is busy is skipped, not rendered.
    for export in (DEMO_EXPORT, unreachable(DEMO_EXPORT), averaged_text(DEMO_EXPORT)):
        created = await api.post("/exports", json=export)
        assert created.status_code == 201, created.text
        await finished(api, created.json()["id"])
    for check in checks:
        await check()


async def finished(api: httpx.AsyncClient, request_id: str) -> None:
    """Until the request's (first) job is final."""
    final = {"done", "failed", "cancelled", "skipped", "expired"}
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            jobs = (await api.get("/jobs", params={"requestId": request_id})).json()["items"]
            if jobs and jobs[0]["status"] in final:
                return
            await asyncio.sleep(0.5)


async def test_store_gauges_and_consumer_lag(services: LocalServices, api: httpx.AsyncClient) -> None:
    """The scheduler's gauges follow the store: jobs by status, the outbox, the due backlog; each
    consumer reports the lag of its own groups."""
    done = await moved(services, "scheduler", "exporter_jobs", status="done")
    created = await api.post("/exports", json=DEMO_EXPORT)
    assert created.status_code == 201, created.text
    await done()
    text = await scrape(services.metrics_urls()["scheduler"])
    for family in ("exporter_outbox_pending_events", "exporter_outbox_oldest_age_seconds"):
        assert f"{family} " in text
    assert sample(text, "exporter_scheduler_due_requests") == 0  # fired at once, nothing left due
    renderer = await scrape(services.metrics_urls()["renderer"])
    assert 'exporter_consumer_lag_messages{group="renderer",partition="' in renderer


def unreachable(export: dict[str, Any]) -> dict[str, Any]:
    """``export`` sent to a Telegram chat whose bot API does not answer (its delivery fails), due
    in a moment: the scheduler, not the API, queues it."""
    changed = copy.deepcopy(export)
    changed["startAt"] = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    [message] = changed["notification"]["messages"]
    message.update(medium="telegram", recipients=[TELEGRAM_CHAT])
    return changed


def averaged_text(export: dict[str, Any]) -> dict[str, Any]:
    """``export`` of the text readings (``text_readings``) averaged: the render fails."""
    changed = copy.deepcopy(export)
    params = changed["items"][0]["params"]
    params["target"] = {"value": f"urn:cpt:smartdevice:nid:{DEVICE}:{TEXT_METRIC}"}
    params["decimation"] = {"ds": "15m", "dsf": "avg"}
    return changed


def text_readings() -> MeasurementsPublished:
    """The device's ``TEXT_METRIC``: text values, which no average can take."""
    pack = MeasurementPack(
        channel="plant-1",
        subtopic="events.data",
        publisher=DEVICE,
        base_time=START.timestamp(),
        records=[MeasurementRecord(name=TEXT_METRIC, time=60 * n, string_value="on") for n in range(10)],
    )
    return MeasurementsPublished(id="metrics-text-1", source="tests/metrics", tenant="default", data=pack)


async def test_consumer_lag_counts_what_a_group_has_not_committed(servers: Settings) -> None:
    """Three records past a group's commit are a lag of three, in ``committed_lag`` (which
    ``exporter doctor`` reads too) and in the gauge a consumer's reading sets."""
    # A dead-letter topic that nothing in this module writes to meanwhile (lag reads our topics only).
    group, topic = f"metrics-lag-{uuid.uuid4().hex[:8]}", Topic.IAM_POLICY_UPDATED.dead_letter
    partition = TopicPartition(topic, 0)
    reader = AIOKafkaConsumer(**client_options(servers.kafka), group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign([partition])
        await reader.seek_to_end(partition)
        await reader.commit({partition: await reader.position(partition)})
    finally:
        await reader.stop()
    producer = AIOKafkaProducer(**client_options(servers.kafka))
    await producer.start()
    try:
        for _ in range(3):
            await producer.send_and_wait(topic, b"{}", partition=0)
    finally:
        await producer.stop()
    assert (await committed_lag(servers.kafka, group))[partition] == 3
    await read_lag(servers.kafka, [group])
    text = generate_latest(metrics.REGISTRY).decode()
    assert sample(text, "exporter_consumer_lag_messages", group=group, topic=topic, partition="0") == 3


async def test_store_gauges_follow_the_store(runtime: Runtime) -> None:
    """What the scheduler's readings set: events owed by the outbox and its oldest entry's age,
    jobs by status, requests due now."""
    now = utcnow()
    await runtime.db[OUTBOX].insert_one(
        {"_id": "e1", "messages": [{"id": "e1"}, {"id": "e2"}], "createdAt": now - timedelta(seconds=30)}
    )
    await runtime.db[JOBS].insert_many([{"_id": f"j{n}", "status": "failed"} for n in range(3)])
    due = {"schedule": {"shard": 5, "nextRunAt": now - timedelta(minutes=1)}, "deletedAt": None}
    later = {"schedule": {"shard": 5, "nextRunAt": now + timedelta(hours=1)}, "deletedAt": None}
    await runtime.db[REQUESTS].insert_many([{"_id": "r1", **due}, {"_id": "r2", **later}])
    for reading in store_readings(runtime.db):
        await reading()
    text = generate_latest(metrics.REGISTRY).decode()
    assert sample(text, "exporter_outbox_pending_events") == 2
    assert sample(text, "exporter_outbox_oldest_age_seconds") >= 30
    assert sample(text, "exporter_jobs", status="failed") == 3
    assert sample(text, "exporter_jobs", status="cancelled") == 0
    assert sample(text, "exporter_scheduler_due_requests") == 1

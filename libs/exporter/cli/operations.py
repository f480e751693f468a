"""``exporter outbox status`` and ``exporter doctor``: what an operator asks first."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from exporter.adapters.kafka import client_options, committed_lag
from exporter.adapters.mongo.client import INDEXES, OUTBOX, Document, connect, database
from exporter.adapters.mongo.outbox import OutboxRepository
from exporter.adapters.storage import ObjectStore
from exporter.cli.client import ApiClient, ApiError
from exporter.cli.session import Session
from exporter.contracts.base import utcnow
from exporter.settings import Settings
from exporter.topics import all_topic_names

CHECK_SECONDS = 15.0
Check = Callable[[], Awaitable[str]]


class Unhealthy(Exception):
    """A dependency answered, but not as it should (a missing topic or index)."""


def register(commands: Any) -> None:
    outbox = commands.add_parser("outbox", help="operators: the outbox").add_subparsers(
        dest="action", required=True
    )
    outbox.add_parser("status", help="events not yet published, and the age of the oldest").set_defaults(
        run=outbox_status
    )
    doctor = commands.add_parser("doctor", help="operators: every dependency reachable, indexes, topics, lag")
    doctor.set_defaults(run=doctor_command)


def outbox_status(session: Session, args: argparse.Namespace) -> int:
    session.show(asyncio.run(outbox_figures(session.settings)))
    return 0


async def outbox_figures(settings: Settings) -> dict[str, Any]:
    client = connect(settings)
    try:
        db = database(client, settings)
        pending = await OutboxRepository(db).pending_count()
        entries = await db[OUTBOX].count_documents({})
        oldest = await db[OUTBOX].find_one({}, {"createdAt": 1}, sort=[("createdAt", 1)])
        age = (utcnow() - oldest["createdAt"]).total_seconds() if oldest else None
        return {"pendingEvents": pending, "entries": entries, "oldestAgeSeconds": age}
    finally:
        await client.close()


def doctor_command(session: Session, args: argparse.Namespace) -> int:
    """Each check in turn, bounded in time; exit 1 when any failed."""
    settings, api = session.settings, session.api
    checks: dict[str, Check] = {
        "api": lambda: asyncio.to_thread(api_check, api, session.config.api_url),
        "mongodb": lambda: mongo_check(settings),
        "kafka": lambda: kafka_check(settings),
        "consumer lag": lambda: lag_check(settings),
        "object store": lambda: storage_check(settings),
        "smtp": lambda: smtp_check(settings),
    }
    results = asyncio.run(run_checks(checks))
    session.show(results, ("check", "ok", "detail"))
    return 0 if all(result["ok"] for result in results) else 1


async def run_checks(checks: dict[str, Check]) -> list[dict[str, Any]]:
    results = []
    for name, check in checks.items():
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                results.append({"check": name, "ok": True, "detail": await check()})
        except Exception as error:
            detail = str(error) if isinstance(error, Unhealthy) else f"{type(error).__name__}: {error}"
            results.append({"check": name, "ok": False, "detail": detail or "timed out"})
    return results


def api_check(api: ApiClient, url: str) -> str:
    """Healthy, and its version where it serves ``/version`` (404: an API without it)."""
    health = api.call("GET", "/health")
    try:
        version = api.call("GET", "/version")
    except ApiError as error:
        if error.status != 404:
            raise
        version = "no /version"
    return f"{url}: {health}; {version}"


async def mongo_check(settings: Settings) -> str:
    """Reachable, its version, and every index the services create present."""
    client: AsyncMongoClient[Document] = connect(settings)
    try:
        info = await client.admin.command("buildInfo")
        db = database(client, settings)
        missing = []
        for collection, models in INDEXES.items():
            present = {index["name"] async for index in await db[collection].list_indexes()}
            missing += [
                f"{collection}.{m.document['name']}" for m in models if m.document["name"] not in present
            ]
        if missing:
            raise Unhealthy(f"version {info.get('version')}; missing indexes: {', '.join(missing)}")
        return f"version {info.get('version')}; {sum(map(len, INDEXES.values()))} indexes present"
    finally:
        await client.close()


async def kafka_check(settings: Settings) -> str:
    """The cluster and every registered topic (and dead-letter topic) on it."""
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    missing = [name for name in all_topic_names() if name not in existing]
    brokers = len(cluster.get("brokers", []))
    if missing:
        raise Unhealthy(f"missing topics: {', '.join(missing)}")
    return (
        f"cluster {cluster.get('cluster_id')}, {brokers} broker(s), {len(all_topic_names())} topics present"
    )


async def lag_check(settings: Settings) -> str:
    """Per consumer group, records on our topics not yet committed (see ``committed_lag``)."""
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    await admin.start()
    try:
        groups = sorted(group for group, _ in await admin.list_consumer_groups())
    finally:
        await admin.close()
    lags = [f"{group}: {await group_lag(settings, group)}" for group in groups]
    return "; ".join(lags) or "no consumer groups"


async def group_lag(settings: Settings, group: str) -> int:
    return sum((await committed_lag(settings.kafka, group)).values())


async def storage_check(settings: Settings) -> str:
    """The bucket answers (a missing bucket or a refused key raises)."""
    store = ObjectStore(settings.storage)
    await store.stat(".exporter-doctor-probe")
    return f"{settings.storage.endpoint}, bucket {store.bucket}"


async def smtp_check(settings: Settings) -> str:
    """The relay greets: its banner names it."""
    reader, writer = await asyncio.open_connection(settings.smtp.host, settings.smtp.port)
    try:
        banner = (await reader.readline()).decode(errors="replace").strip()
    finally:
        writer.close()
    if not banner.startswith("220"):
        raise Unhealthy(f"unexpected greeting {banner[:100]!r}")
    return banner[:200]

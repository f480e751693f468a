"""The scheduler launched as in production, through the shared bootstrap: it fires, its relay
announces the job while it runs, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import signal
import uuid

from pymongo import AsyncMongoClient

from exporter.adapters.mongo.client import JOBS, REQUESTS, Document, ensure_indexes
from exporter.adapters.mongo.requests import request_document
from exporter.contracts.base import utcnow
from exporter.contracts.request import ExportRequest
from exporter.domain.schedule import first_run_at
from exporter.settings import Settings
from exporter.topics import Topic
from tests.benchmarks.harness import launch
from tests.own_database import own_database
from tests.topic_reader import all_values, json_field


async def test_the_scheduler_fires_announces_and_stops_on_sigterm(servers: Settings) -> None:
    settings = own_database(servers, "schedproc", scheduler={"poll_interval_seconds": 0.1})
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongo.uri.get_secret_value(), tz_aware=True
    )
    db = client[settings.mongo.database]
    await ensure_indexes(db)
    now = utcnow()
    request = ExportRequest.model_validate(
        {
            "id": f"proc-{uuid.uuid4().hex[:8]}",
            "tenant": "acme",
            "owner": "alice",
            "createdAt": now,
            "updatedAt": now,
            "type": "oneTime",
            "startAt": now,
            "format": {"extension": "csv"},
            "items": [{"params": {"target": {"value": "urn:x:dev0:power"}, "period": "PT1H"}}],
        }
    )
    await db[REQUESTS].insert_one(request_document(request, first_run_at(request)))

    scheduler = launch(settings, "scheduler")
    try:
        async with asyncio.timeout(60):
            while (job := await db[JOBS].find_one({"requestId": request.id})) is None:
                await asyncio.sleep(0.1)
        # Announced while it runs: its relay works, not only the last flush at stop.
        assert job["_id"] in {
            json_field(value, "data", "jobId") for value in await all_values(settings, Topic.EXPORT_REQUESTED)
        }
        scheduler.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(scheduler.wait, 60)
    finally:
        scheduler.kill()
        scheduler.wait()
        await client.drop_database(settings.mongo.database)
        await client.close()

    assert code == 0

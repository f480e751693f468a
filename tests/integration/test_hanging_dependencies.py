"""A dependency that accepts connections and never answers fails a call in bounded time, and a
hanging object store holds up neither firing nor the recovery of stuck jobs."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import pytest
import urllib3
from pydantic import SecretStr
from pymongo.errors import PyMongoError

from exporter.adapters.mongo.client import JOBS, connect, connect_blocking
from exporter.adapters.storage import ObjectStore
from exporter.contracts.base import utcnow
from exporter.domain.job_life import JobStatus
from exporter.runtime import Runtime
from exporter.settings import Settings
from scheduler import app as scheduler_app
from tests.hanging_servers import HangingMongo, HangingServer
from tests.integration.test_scheduler import export_request, store

# Far below PyMongo's own 30 s server selection (and its unbounded socket wait): a call that
# obeys the settings ends well inside it.
BOUND_SECONDS = 10.0


def pointed_at(settings: Settings, port: int) -> Settings:
    mongo = settings.mongo.model_copy(
        update={
            "uri": SecretStr(f"mongodb://127.0.0.1:{port}/?directConnection=true"),
            "connect_timeout_seconds": 1.0,
            "operation_timeout_seconds": 1.0,
        }
    )
    return settings.model_copy(update={"mongo": mongo})


@pytest.mark.parametrize(
    "server", [HangingServer, HangingMongo], ids=["never-answers", "stops-after-handshake"]
)
async def test_a_mongo_call_to_a_store_that_never_answers_fails_in_bounded_time(
    settings: Settings, server: type[HangingServer]
) -> None:
    async with server().running() as hanging:
        client = connect(pointed_at(settings, hanging.port))
        try:
            async with asyncio.timeout(BOUND_SECONDS):
                with pytest.raises(PyMongoError):
                    await client.admin.command("ping")
        finally:
            await client.close()
    assert hanging.connections >= 1


async def test_a_blocking_mongo_call_to_a_stopped_store_fails_in_bounded_time(settings: Settings) -> None:
    async with HangingMongo().running() as hanging:
        client = connect_blocking(pointed_at(settings, hanging.port))
        try:
            async with asyncio.timeout(BOUND_SECONDS):
                with pytest.raises(PyMongoError):
                    await asyncio.to_thread(client.admin.command, "ping")
        finally:
            client.close()


async def test_firing_and_stuck_jobs_go_on_while_the_object_store_hangs(runtime: Runtime) -> None:
    """Deletions that hang for longer than the test may wait: only expiry waits on them."""
    async with HangingServer().running() as hanging:
        storage = runtime.settings.storage.model_copy(
            update={"endpoint": f"127.0.0.1:{hanging.port}", "read_timeout_seconds": 3600.0, "retries": 0}
        )
        runtime.storage = ObjectStore(storage)
        now = utcnow()
        await store(runtime, [export_request(1, now, type="oneTime", startAt=now)])
        intervals = {
            "poll_interval_seconds": 0.05,
            "sweep_interval_seconds": 0.05,
            "expiry_interval_seconds": 0.05,
        }
        settings = runtime.settings.model_copy(
            update={"scheduler": runtime.settings.scheduler.model_copy(update=intervals)}
        )
        # A job past retention: expiry's first deletion hangs.
        old = {"createdAt": now - timedelta(days=settings.scheduler.retention_days + 1)}
        stopping = asyncio.Event()
        serving = asyncio.create_task(scheduler_app.serve(runtime, settings, stopping))
        try:
            async with asyncio.timeout(60):
                fired = await first_job(runtime)
                await runtime.db[JOBS].update_one({"_id": fired}, {"$set": old})
                while not hanging.connections:
                    await asyncio.sleep(0.05)
                # Expiry now waits on the store; the renderer of a second job dies meanwhile.
                await store(runtime, [export_request(2, now, type="oneTime", startAt=now)])
                stuck = await first_job(runtime, {"requestId": "req-0002"})
                assert await runtime.jobs.start(stuck, timedelta(seconds=-1))
                while (job := await runtime.jobs.get(stuck)) and job.status is not JobStatus.NOT_PROCESSED:
                    await asyncio.sleep(0.05)
        finally:
            stopping.set()
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving


async def first_job(runtime: Runtime, query: dict[str, Any] | None = None) -> str:
    while (job := await runtime.db[JOBS].find_one(query or {})) is None:
        await asyncio.sleep(0.05)
    return str(job["_id"])


async def test_an_object_store_call_to_a_store_that_never_answers_fails_in_bounded_time(
    settings: Settings,
) -> None:
    async with HangingServer().running() as hanging:
        storage = settings.storage.model_copy(
            update={"endpoint": f"127.0.0.1:{hanging.port}", "read_timeout_seconds": 1.0, "retries": 1}
        )
        async with asyncio.timeout(BOUND_SECONDS):
            with pytest.raises(urllib3.exceptions.HTTPError):
                await ObjectStore(storage).stat("any-key")
    assert hanging.connections >= 1

"""The request-api served by a real uvicorn on a free port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from pymongo import AsyncMongoClient

from exporter.adapters.storage import ObjectStore
from exporter.settings import Settings
from request_api.app import create_app
from tests.own_database import own_database


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def isolated(settings: Settings, **api: object) -> Settings:
    """The session's servers with a database of its own and the given API settings."""
    return own_database(settings, "api", api={"port": free_port(), **api})


@asynccontextmanager
async def serving(settings: Settings, **options: Any) -> AsyncIterator[str]:
    """Yields the base URL while the API runs; drops its database afterwards. ``options``:
    uvicorn's, instead of the defaults here (its own logging, warnings only)."""
    options = {"log_level": "warning"} | options
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.api.port, **options)
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{settings.api.port}"
    finally:
        server.should_exit = True
        await task
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo.uri.get_secret_value())
        await client.drop_database(settings.mongo.database)
        await client.close()


CSV = b"a,b\r\n1,2\r\n"


async def finished_with_a_file(settings: Settings, request_id: str, job_id: str, scratch: Path) -> None:
    """The job made ``done`` with one stored file, ``data.csv`` (``CSV``), as a render leaves it."""
    key = f"acme/{request_id}/{job_id}/data.csv"
    (scratch / "data.csv").write_bytes(CSV)
    await ObjectStore(settings.storage).upload_file(key, scratch / "data.csv", "text/csv")
    file = {
        "key": key,
        "name": "data.csv",
        "sizeInBytes": len(CSV),
        "rows": 1,
        "checksum": "x",
        "contentType": "text/csv",
    }
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo.uri.get_secret_value())
    await client[settings.mongo.database].jobs.update_one(
        {"_id": job_id}, {"$set": {"status": "done", "files": [file]}}
    )
    await client.close()

"""A wired runtime per test, on the session's servers, with a database of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from exporter.runtime import Runtime
from exporter.settings import Settings


@pytest.fixture
async def runtime(servers: Settings) -> AsyncIterator[Runtime]:
    mongo = servers.mongo.model_copy(update={"database": f"t{uuid.uuid4().hex[:12]}"})
    wired = Runtime.build(servers.model_copy(update={"mongo": mongo}))
    await wired.prepare()
    await wired.broker.connect()
    try:
        yield wired
    finally:
        await wired.mongo.drop_database(mongo.database)
        await wired.close()
        await wired.broker.stop()

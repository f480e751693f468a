"""A wired runtime per test, on the session's servers, with a database of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.own_database import own_database

from exporter.runtime import Runtime
from exporter.settings import Settings


@pytest.fixture
async def runtime(servers: Settings) -> AsyncIterator[Runtime]:
    settings = own_database(servers, "t")
    wired = Runtime.build(settings)
    # No relay: tests see the outbox as their writes left it, and publish it when they mean to.
    await wired.start(relay=False)
    try:
        yield wired
    finally:
        await wired.mongo.drop_database(settings.mongo.database)
        await wired.stop()

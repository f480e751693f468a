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
        # The database is left to the session's servers, which start empty and go with it.
        # Dropping it here deadlocked the embedded store when a service the test ran in process
        # had been stopped inside a transaction: the drop retries against the transaction's
        # uncommitted writes while holding the store's lock, which the store's reaper of
        # abandoned transactions needs.
        await wired.stop()

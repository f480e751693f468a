"""A wired runtime per test, on the session's servers, with a database of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from exporter.runtime import Runtime
from exporter.settings import Settings
from tests.own_database import own_database


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime on ``settings``, without the relay: tests see the outbox as their writes left
    it, and publish it when they mean to."""
    wired = Runtime.build(settings)
    await wired.start(relay=False)
    try:
        yield wired
    finally:
        await wired.stop()


@pytest.fixture
async def runtime(servers: Settings) -> AsyncIterator[Runtime]:
    # The database is left to the session's servers, which start empty and go with it.
    # Dropping it here deadlocked the embedded store when a service the test ran in process
    # had been stopped inside a transaction: the drop retries against the transaction's
    # uncommitted writes while holding the store's lock, which the store's reaper of
    # abandoned transactions needs.
    async with running(own_database(servers, "t")) as wired:
        yield wired

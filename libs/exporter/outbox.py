"""The outbox relay: publishes what a service committed to MongoDB, at least once, in order.

A service writes its state change and the event announcing it in one transaction; the relay
publishes later. If the process dies between the two steps nothing is lost: the event stays
in the outbox and is published on the next pass. Event ids are stable, so a publish repeated
after a crash between publish and mark is recognisable downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Protocol

from exporter.adapters.mongo.outbox import OutboxRepository
from exporter.settings import OutboxSettings

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish_raw(self, topic: str, key: str, payload: dict[str, object]) -> None: ...


class OutboxRelay:
    def __init__(self, outbox: OutboxRepository, publisher: Publisher, settings: OutboxSettings) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._settings = settings
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Publish soon rather than at the next poll: called right after a local commit."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """One pass: publishes every event it can claim, returns how many went out."""
        sent = 0
        while batch := await self._outbox.claim(
            self._settings.batch_size, timedelta(seconds=self._settings.lease_seconds)
        ):
            published: list[str] = []
            try:
                for event in batch:
                    await self._publisher.publish_raw(event["topic"], event["key"], event["payload"])
                    published.append(event["_id"])
            finally:
                if published:
                    await self._outbox.mark_published(published)
                unsent = [event["_id"] for event in batch[len(published) :]]
                if unsent:
                    await self._outbox.release(unsent)
            sent += len(published)
        return sent

    async def run(self) -> None:
        """Forever: a pass, then wait for a wake-up or the poll interval."""
        while True:
            try:
                await self.publish_pending()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._settings.poll_interval_seconds)
            self._wake.clear()

"""The outbox relay: publishes what a service committed to MongoDB, at least once, in order.

A service writes its state change and the event announcing it in one transaction; the relay
publishes later. If the process dies between the two steps nothing is lost: the event stays
in the outbox and is published on the next pass. Event ids are stable, so a publish repeated
after a crash between publish and mark is recognisable downstream.

Two paths lead out. The fast one: the writer inserts its events already leased to its own
relay (``held``; the unit of work does so) and, once committed, hands them over
(``publish_soon``); they are published from memory and deleted, without a claim round trip.
The safe one: every poll interval the relay claims whatever nobody holds (events whose writer
died, whose lease ran out, or whose publish failed and was handed back) and publishes those.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Protocol

from exporter.adapters.errors import Undeliverable
from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.outbox import OutboxRepository, outbox_document, outbox_message
from exporter.contracts.base import utcnow
from exporter.contracts.events import Envelope
from exporter.liveness import Liveness
from exporter.settings import OutboxSettings
from exporter.topics import Topic

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish_raw(self, topic: str, key: str, payload: dict[str, object]) -> None: ...


class OutboxRelay:
    def __init__(self, outbox: OutboxRepository, publisher: Publisher, settings: OutboxSettings) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._settings = settings
        self._wake = asyncio.Event()
        self._handed: list[Document] = []

    def held(self, topic: Topic, key: str, event: Envelope[Any]) -> Document:
        """The outbox entry for ``event``, leased to this relay from the start: no other relay
        touches it unless this process dies and the lease runs out. Insert it in the writer's
        transaction, then hand it to ``publish_soon`` once that has committed."""
        return self.held_many([outbox_message(topic, key, event)])

    def held_many(self, messages: list[Document]) -> Document:
        """``held`` for many ``outbox_message``s at once: one entry, published in order."""
        lease_until = utcnow() + timedelta(seconds=self._settings.lease_seconds)
        return outbox_document(messages, lease_until)

    @property
    def outbox(self) -> OutboxRepository:
        return self._outbox

    def publish_soon(self, documents: Iterable[Document]) -> None:
        """Publishes committed events from memory, right away (called after the commit)."""
        self._handed.extend(documents)
        self._wake.set()

    async def publish_handed(self) -> int:
        """Publishes what writers handed over; what fails goes back to the claimable pool."""
        batch, self._handed = self._handed, []
        if not batch:
            return 0
        return await self._settle(batch)

    async def publish_pending(self) -> int:
        """One pass: publishes every event it can claim, returns how many went out.

        Raises the first publish error once the claimed batch is settled: what went out is
        marked, the rest handed back for the next pass."""
        sent = 0
        while batch := await self._outbox.claim(
            self._settings.batch_size, timedelta(seconds=self._settings.lease_seconds)
        ):
            sent += await self._settle(batch)
        return sent

    async def _settle(self, batch: list[Document]) -> int:
        """Publishes ``batch``'s entries, deletes those that went out whole, keeps what did not
        go out for the next pass; re-raises a failure. Returns how many events went out."""
        published, error = await self._publish([message for entry in batch for message in entry["messages"]])
        done, untouched = [], []
        for entry in batch:
            unsent = [message for message in entry["messages"] if message["id"] not in published]
            if not unsent:
                done.append(entry["_id"])
            elif len(unsent) == len(entry["messages"]):
                untouched.append(entry["_id"])
            else:
                await self._outbox.retain(entry["_id"], unsent)
        if done:
            await self._outbox.mark_published(done)
        if untouched:
            await self._outbox.release(untouched)
        if error is not None:
            raise error
        return len(published)

    async def _publish(self, messages: list[Document]) -> tuple[set[str], BaseException | None]:
        """Publishes concurrently (the producer batches the sends) yet each key's events in
        order: the n-th event of every key goes out in wave n, and a key whose event failed
        sends nothing more in this pass. An event the broker refuses for good (``Undeliverable``)
        counts as gone: it is dead-lettered, logged and dropped, and its key goes on."""
        waves: list[list[Document]] = []
        depth: dict[str, int] = {}
        for message in messages:
            position = depth.get(message["key"], 0)
            depth[message["key"]] = position + 1
            if position == len(waves):
                waves.append([])
            waves[position].append(message)
        published: set[str] = set()
        failed_keys: set[str] = set()
        first_error: BaseException | None = None
        for wave in waves:
            ready = [message for message in wave if message["key"] not in failed_keys]
            outcomes = await asyncio.gather(
                *(self._publisher.publish_raw(m["topic"], m["key"], m["payload"]) for m in ready),
                return_exceptions=True,
            )
            for message, outcome in zip(ready, outcomes, strict=True):
                if isinstance(outcome, Undeliverable):
                    # Refused for good: retried, it would block the relay (and its key) for ever.
                    log.error("event %s dropped from the outbox: %s", message["id"], outcome)
                    published.add(message["id"])
                elif isinstance(outcome, BaseException):
                    failed_keys.add(message["key"])
                    first_error = first_error or outcome
                else:
                    published.add(message["id"])
        return published, first_error

    async def run(self, liveness: Liveness) -> None:
        """Forever: what was handed over as soon as it is, a claim pass every poll interval."""
        loop = asyncio.get_running_loop()
        next_pass = loop.time()
        while True:
            self._wake.clear()
            try:
                await self.publish_handed()
                if loop.time() >= next_pass:
                    next_pass = loop.time() + self._settings.poll_interval_seconds
                    await self.publish_pending()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
            liveness.beat("outbox relay", self._settings.poll_interval_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, next_pass - loop.time()))

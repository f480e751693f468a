"""Renders run beside the consumer, never in it: a render may last an hour, far beyond the
consumer's max poll interval, and a consumer that does not poll for that long is put out of its
group mid-render (its partitions move, the uncommitted record is delivered again, the group
rebalances over and over).

So the consumer only takes a delivery (``export_job.take``: the job started, its lease taken),
hands the render to a task here and commits. From then on the job's durability is its lease, not
the offset: a renderer that dies stops renewing the lease, and the scheduler's sweep queues the
job again (``scheduler.sweeping``); a second delivery, after a rebalance, finds the lease held
and skips; the job's guarded transitions let only the run holding it finish. At-least-once stays
(until the lease is taken the offset is not committed), effects stay once.

At most ``concurrent_renders`` run at once. While all are taken the consumer pauses its
partitions and goes on polling, so it stays in its group and the records wait in Kafka; a record
that arrives anyway (a rebalance resumes partitions) is handed back (the consumer seeks back to
it) and read again once a render ends. Renders still running when the process stops are
cancelled; their leases run out and the sweep queues them again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer

log = logging.getLogger(__name__)


class Renders:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._running: set[asyncio.Task[None]] = set()
        self._paused: AIOKafkaConsumer | None = None
        self._closed = False

    @property
    def full(self) -> bool:
        return self._closed or len(self._running) >= self._limit

    def start(self, render: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(render, name=name)
        self._running.add(task)
        task.add_done_callback(self._ended)

    def hold(self, consumer: AIOKafkaConsumer) -> None:
        """Stops fetching until a render ends; the consumer keeps polling meanwhile."""
        consumer.pause(*consumer.assignment())
        self._paused = consumer

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("%s failed; its lease runs out, a sweep retries it", task.get_name(), exc_info=error)
        if self._paused is not None and not self.full:
            self._paused.resume(*self._paused.paused())
            self._paused = None

    async def run(self) -> None:
        """Until the process stops; then cancels the renders in hand and waits for them to end."""
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self._closed = True
            for task in self._running:
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

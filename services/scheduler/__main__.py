"""``python -m scheduler``: fires due runs, recovers stuck jobs, expires old ones."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Awaitable, Callable

from exporter.runtime import Runtime, configure_logging
from exporter.settings import Settings, get_settings
from scheduler.firing import fire_due, shard_order
from scheduler.sweeping import sweep

log = logging.getLogger("scheduler")
# On SIGTERM the pass in hand may finish within this; then it is cancelled (its transaction
# aborts, nothing half-done remains) so that a stop never hangs.
GRACE_SECONDS = 10.0


async def serve(runtime: Runtime, settings: Settings, stopping: asyncio.Event) -> None:
    """Firing and housekeeping, each on its own loop: a slow or failing one never holds up the
    other (a firing pass stuck on a busy store still lets stuck jobs be recovered)."""
    shards = shard_order()

    async def fire() -> None:
        # More may be due than one batch per shard holds.
        while await fire_due(runtime, shards) and not stopping.is_set():
            pass

    intervals = settings.scheduler
    await asyncio.gather(
        every(intervals.poll_interval_seconds, fire, "firing", stopping),
        every(intervals.sweep_interval_seconds, functools.partial(sweep, runtime), "sweep", stopping),
    )


async def every(
    interval: float, work: Callable[[], Awaitable[object]], name: str, stopping: asyncio.Event
) -> None:
    """``work`` until ``stopping``, ``interval`` seconds apart; a failed pass is logged and retried."""
    while not stopping.is_set():
        try:
            await work()
        except Exception:
            log.exception("scheduler %s pass failed; retrying", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)


async def run() -> None:
    settings = get_settings()
    runtime = Runtime.build(settings)
    await runtime.prepare()
    await runtime.broker.connect()
    await runtime.start_relay()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stopping.set)
    log.info("scheduler started")
    work = asyncio.create_task(serve(runtime, settings, stopping))
    try:
        await stopping.wait()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(work, GRACE_SECONDS)
    finally:
        work.cancel()
        await runtime.close()
        await runtime.broker.stop()


def main() -> None:
    configure_logging(get_settings())
    asyncio.run(run())


if __name__ == "__main__":
    main()

"""``python -m scheduler``: fires due runs, recovers stuck jobs, expires old ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from exporter.runtime import Runtime, configure_logging
from exporter.settings import Settings, get_settings
from scheduler.firing import fire_due, shard_order
from scheduler.sweeping import sweep

log = logging.getLogger("scheduler")
# On SIGTERM the pass in hand may finish within this; then it is cancelled (its transaction
# aborts, nothing half-done remains) so that a stop never hangs.
GRACE_SECONDS = 10.0


async def serve(runtime: Runtime, settings: Settings, stopping: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    next_sweep = loop.time()
    shards = shard_order()
    while not stopping.is_set():
        try:
            # More may be due than one batch per shard holds.
            while await fire_due(runtime, shards) and not stopping.is_set():
                pass
            if loop.time() >= next_sweep:
                next_sweep = loop.time() + settings.scheduler.sweep_interval_seconds
                await sweep(runtime)
        except Exception:
            log.exception("scheduler pass failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.scheduler.poll_interval_seconds)


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

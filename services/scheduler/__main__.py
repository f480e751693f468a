"""``python -m scheduler``: fires due runs, recovers stuck jobs, expires old ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from exporter.runtime import Runtime, configure_logging
from exporter.settings import get_settings
from scheduler.firing import fire_due
from scheduler.sweeping import sweep

log = logging.getLogger("scheduler")


async def run() -> None:
    settings = get_settings()
    runtime = Runtime.build(settings)
    await runtime.prepare()
    await runtime.broker.connect()
    await runtime.start_relay()
    log.info("scheduler started")
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    # SIGTERM (docker stop, Kubernetes) ends the pass in hand and sends what it committed.
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stopping.set)
    next_sweep = loop.time()
    try:
        while not stopping.is_set():
            try:
                # More may be due than one batch holds.
                while await fire_due(runtime) and not stopping.is_set():
                    pass
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + settings.scheduler.sweep_interval_seconds
                    await sweep(runtime)
            except Exception:
                log.exception("scheduler pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), settings.scheduler.poll_interval_seconds)
    finally:
        await runtime.close()
        await runtime.broker.stop()


def main() -> None:
    configure_logging(get_settings())
    asyncio.run(run())


if __name__ == "__main__":
    main()

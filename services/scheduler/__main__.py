"""``python -m scheduler``: fires due runs and publishes them through the outbox."""

from __future__ import annotations

import asyncio
import logging

from exporter.runtime import Runtime, configure_logging
from exporter.settings import get_settings
from scheduler.firing import fire_due

log = logging.getLogger("scheduler")


async def run() -> None:
    settings = get_settings()
    runtime = Runtime.build(settings)
    await runtime.prepare()
    await runtime.broker.connect()
    await runtime.start_relay()
    log.info("scheduler started")
    try:
        while True:
            try:
                await fire_due(runtime)
            except Exception:
                log.exception("scheduler pass failed; retrying")
            await asyncio.sleep(settings.scheduler.poll_interval_seconds)
    finally:
        await runtime.close()
        await runtime.broker.stop()


def main() -> None:
    configure_logging(get_settings())
    asyncio.run(run())


if __name__ == "__main__":
    main()

"""The scheduler as a FastStream application: no subscriber, two loops in the background.

It consumes nothing, yet starts and stops like the other services: its broker carries the
outbox relay's events (``export.requested``), and SIGTERM is FastStream's to handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

from faststream import FastStream

from exporter.liveness import Liveness
from exporter.runtime import Runtime, stream_service
from exporter.settings import Settings
from scheduler.firing import fire_due, shard_order
from scheduler.sweeping import expire_old_jobs, sweep

log = logging.getLogger("scheduler")
# On SIGTERM the pass in hand may finish within this; then it is cancelled (its transaction
# aborts, nothing half-done remains) so that a stop never hangs.
GRACE_SECONDS = 10.0


async def serve(runtime: Runtime, settings: Settings, stopping: asyncio.Event) -> None:
    """Firing, sweeping and expiry, each on its own loop: a slow or failing one never holds up
    the others (a firing pass stuck on a busy store still lets stuck jobs be recovered, a dead
    object store stops only deletions)."""
    shards = shard_order()

    async def fire() -> None:
        # More may be due than one batch per shard holds.
        while await fire_due(runtime, shards) and not stopping.is_set():
            pass

    intervals = settings.scheduler
    await asyncio.gather(
        every(intervals.poll_interval_seconds, fire, "firing", stopping, runtime.liveness),
        every(
            intervals.sweep_interval_seconds,
            functools.partial(sweep, runtime),
            "sweep",
            stopping,
            runtime.liveness,
        ),
        # Deletions wait on the object store: a dead one holds up only expiry (its calls are bounded).
        every(
            intervals.expiry_interval_seconds,
            functools.partial(expire_old_jobs, runtime),
            "expiry",
            stopping,
            runtime.liveness,
        ),
    )


async def every(
    interval: float,
    work: Callable[[], Awaitable[object]],
    name: str,
    stopping: asyncio.Event,
    liveness: Liveness,
) -> None:
    """``work`` until ``stopping``, ``interval`` seconds apart; a failed pass is logged and
    retried. Each pass is a heartbeat: a pass that hangs stalls the scheduler's liveness."""
    while not stopping.is_set():
        try:
            await work()
        except Exception:
            log.exception("scheduler %s pass failed; retrying", name)
        liveness.beat(f"scheduler {name}", interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)


def create_app(settings: Settings) -> FastStream:
    app, runtime = stream_service(settings, "Exporter scheduler", relay=True)

    @app.after_startup
    async def start_serving() -> None:
        runtime.spawn(serve(runtime, settings, runtime.stopping), grace=GRACE_SECONDS)

    return app

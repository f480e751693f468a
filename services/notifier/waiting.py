"""Retries waiting out their backoff: the deliveries' and the transfers' alike. At shutdown they
are cancelled rather than waited for (their entry on the job says when to go on)."""

from __future__ import annotations

import asyncio
from typing import Any


class Waiting:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def sleep(self, seconds: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await asyncio.sleep(seconds)
        finally:
            self._tasks.discard(task)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

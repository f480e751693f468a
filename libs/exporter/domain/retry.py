"""How long to wait before trying again: one rule for every retry (deliveries, renderings)."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_seconds(
    attempt: int,
    initial: float,
    maximum: float,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with equal jitter after ``attempt`` failures; never before Retry-After.

    Half the delay is fixed and half random, so retries of many deliveries that failed together
    spread out instead of hitting the recovering server at once.
    """
    ceiling = min(maximum, initial * 2.0 ** max(attempt - 1, 0))
    delay = ceiling / 2 + rand() * ceiling / 2
    return max(delay, retry_after or 0.0)

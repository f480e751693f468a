"""Liveness that reflects progress: a service is alive only while each of its loops progresses.

A running process is not proof of a working one: a scheduler stuck in a pass or a consumer stuck
in a handler still answers a ping. So each loop records a heartbeat: a loop that idles between
passes beats after each pass and says when the next is due (``beat``); work that may rightly take
long, such as handling one message, is timed while in hand (``working``), so a consumer waiting
for records counts as alive and one stuck in a handler does not. The request-api answers
``/health`` from it; the other services write it to a health file (``write_reports``) that
``make run``'s status and the container health check read (``read_report``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Report = dict[str, Any]


@dataclass
class Liveness:
    """The heartbeats of one process's loops, each judged against its own bound."""

    # Slack on top of a loop's own interval before it counts as stalled.
    stall_seconds: float
    # How long one piece of work in hand (a message, a batch) may take.
    busy_seconds: float
    clock: Callable[[], float] = time.monotonic
    _due: dict[str, float] = field(default_factory=dict)  # loop -> latest time of its next beat
    _busy: dict[str, dict[int, float]] = field(default_factory=dict)  # loop -> work -> began
    _tokens: Iterator[int] = field(default_factory=itertools.count)

    def beat(self, loop: str, next_in: float = 0.0) -> None:
        """``loop`` completed a pass; its next is due in ``next_in`` seconds."""
        self._due[loop] = self.clock() + next_in + self.stall_seconds

    @contextmanager
    def working(self, loop: str) -> Iterator[None]:
        """Times one piece of ``loop``'s work; several may be in hand at once."""
        token, in_hand = next(self._tokens), self._busy.setdefault(loop, {})
        in_hand[token] = self.clock()
        try:
            yield
        finally:
            del in_hand[token]

    def stalled(self) -> dict[str, float]:
        """Each stalled loop with the seconds it has gone without progress beyond its bound."""
        now = self.clock()
        late = {loop: now - due for loop, due in self._due.items() if now > due}
        for loop, in_hand in self._busy.items():
            if in_hand and (over := now - min(in_hand.values()) - self.busy_seconds) > 0:
                late[loop] = max(late.get(loop, 0.0), over)
        return late

    def report(self) -> Report:
        stalled = self.stalled()
        return {
            "status": "stalled" if stalled else "ok",
            "loops": sorted({*self._due, *self._busy}),
            "stalled": {loop: round(seconds, 1) for loop, seconds in sorted(stalled.items())},
        }


async def write_reports(liveness: Liveness, path: Path, interval: float) -> None:
    """Forever: the report to ``path`` every ``interval`` seconds, stamped with the wall clock.

    A file that stops changing is itself a verdict: the process or its event loop is stuck.
    """
    try:
        while True:
            _write(path, {**liveness.report(), "written": time.time()})
            await asyncio.sleep(interval)
    finally:  # stopped: no report rather than a last "ok"
        _remove(path)


def _write(path: Path, report: Report) -> None:
    """A few hundred bytes to a local file: no reason to leave the event loop for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(json.dumps(report))
    scratch.replace(path)  # readers never see half a report


def _remove(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()


def read_report(path: Path, max_age: float, now: Callable[[], float] = time.time) -> str | None:
    """None when the health file says ok and is fresh; otherwise what is wrong."""
    try:
        report = json.loads(path.read_text())
        age = now() - float(report["written"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"no health report in {path}: {error}"
    if age > max_age:
        return f"health report {age:.0f} s old (the process or its event loop is stuck)"
    if report.get("status") != "ok":
        late = ", ".join(f"{loop} (+{seconds} s)" for loop, seconds in report.get("stalled", {}).items())
        return f"stalled: {late}"
    return None

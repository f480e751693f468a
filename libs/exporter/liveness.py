"""Liveness that reflects progress: a service is alive only while each of its loops progresses.

A running process is not proof of a working one: a scheduler stuck in a pass or a consumer stuck
in a handler still answers a ping. So each loop records a heartbeat: a loop that idles between
passes beats after each pass and says when the next is due (``beat``); work that may rightly take
long, such as handling one message, is timed while in hand (``working``), so a consumer waiting
for records counts as alive and one stuck in a handler does not. The request-api answers
``/health`` from it; the other services write it to a health file (``write_reports``) that
``make run``'s status and the container health check read (``read_report``).

Readiness (``Readiness``) is liveness and more: each dependency the process uses (MongoDB, Kafka,
S3) answered its last check. The checks run in the background every few seconds, each bounded by
a timeout and never more than one of a kind at a time; probes only read their latest results,
so a probe never costs a dependency a request. The request-api answers ``/ready`` from it; the
other services add it to their health file.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)
Report = dict[str, Any]
# The exit status of a process that ended itself for having stalled (EX_SOFTWARE).
EXIT_STALLED = 70
REASON_MAX_CHARS = 300


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


class Reporter(Protocol):
    def report(self) -> Report: ...


@dataclass
class Readiness:
    """Whether this process should be sent work: alive, and each of its dependencies answering.

    ``checks``: name -> an attempt that raises when the dependency does not answer."""

    liveness: Liveness
    checks: dict[str, Callable[[], Awaitable[object]]]
    # Seconds between two rounds of checks, and how long one check may take.
    interval: float
    timeout: float
    _results: dict[str, str | None] = field(default_factory=dict)  # name -> None (ok) or why not
    _in_flight: dict[str, asyncio.Future[object]] = field(default_factory=dict)

    async def check(self) -> None:
        """One round: every check at once, each waited for at most ``timeout``. A check still
        running is not started again (a client stuck in a thread would pile up), only waited for."""
        for name, attempt in self.checks.items():
            if name not in self._in_flight or self._in_flight[name].done():
                self._in_flight[name] = asyncio.ensure_future(attempt())
        tasks = list(self._in_flight.values())
        await asyncio.wait(tasks, timeout=self.timeout)
        self._results = {name: self._outcome(task) for name, task in self._in_flight.items()}

    def _outcome(self, task: asyncio.Future[object]) -> str | None:
        if not task.done():
            return f"no answer within {self.timeout:g} s"
        if task.cancelled():
            return "cancelled"
        error = task.exception()
        return None if error is None else describe_failure(error, self.timeout)

    async def run(self) -> None:
        """Checks every ``interval`` seconds until cancelled; then cancels the checks in flight."""
        try:
            while True:
                await self.check()
                await asyncio.sleep(self.interval)
        finally:
            for task in self._in_flight.values():
                task.cancel()

    def report(self) -> Report:
        """The liveness report with ``ready`` and each dependency's state (``ok`` or why not)."""
        live = self.liveness.report()
        dependencies = {name: self._results.get(name, "not checked yet") for name in self.checks}
        return {
            **live,
            "ready": live["status"] == "ok" and all(reason is None for reason in dependencies.values()),
            "dependencies": {name: reason or "ok" for name, reason in dependencies.items()},
        }


async def exit_when_stalled(
    liveness: Liveness, after: float, interval: float, end: Callable[[int], object] = os._exit
) -> None:
    """Forever: ends the process once it has been stalled for ``after`` seconds, so a supervisor
    that restarts what exits (Docker's restart policy, ``make run``) restarts it: liveness drives
    restarts even where nothing probes it. A stalled process may not stop cleanly: it exits at once."""
    since: float | None = None
    while True:
        stalled = liveness.stalled()
        now = liveness.clock()
        since = None if not stalled else now if since is None else since
        if since is not None and now - since >= after:
            log.critical("stalled for %.0f s (%s); exiting to be restarted", now - since, ", ".join(stalled))
            end(EXIT_STALLED)
            return
        await asyncio.sleep(interval)


def describe_failure(error: BaseException, timeout: float) -> str:
    """The first line of an error, bounded: driver errors append whole topology descriptions."""
    if isinstance(error, TimeoutError) and not str(error):
        return f"no answer within {timeout:g} s"
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:REASON_MAX_CHARS]


async def write_reports(liveness: Reporter, path: Path, interval: float) -> None:
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


def read_report(
    path: Path, max_age: float, now: Callable[[], float] = time.time, *, ready: bool = False
) -> str | None:
    """None when the health file says ok and is fresh (and, with ``ready``, that the process is
    ready); otherwise what is wrong."""
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
    if ready and report.get("ready") is not True:
        failing = {name: why for name, why in report.get("dependencies", {}).items() if why != "ok"}
        return f"not ready: {', '.join(f'{name}: {why}' for name, why in failing.items()) or 'unknown'}"
    return None

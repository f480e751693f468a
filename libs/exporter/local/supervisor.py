"""Supervision for ``make run``, like a compose file's ``restart: unless-stopped``.

A server or service that exits is launched again after a pause that doubles with each quick
exit (1 s up to 30 s by default) and starts over once a run lasted a healthy minute; the others
keep running. Each restart is one line with the exit status, and ``status`` shows the count.
A process whose PID file is gone was stopped on purpose (``make stop``): that ends supervision.

The chaos harness drives the same object: ``hold`` keeps a killed process down for as long as it
likes, ``release`` hands it back to the supervisor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field, model_validator

from exporter.local.servers import ProcessGroup


class RestartPolicy(BaseModel):
    """The pauses before restarts: ``first_seconds`` doubling up to ``max_seconds``."""

    first_seconds: float = Field(default=1.0, gt=0, le=60)
    max_seconds: float = Field(default=30.0, gt=0, le=3600)
    # A run at least this long was healthy: the next exit is restarted after ``first_seconds``.
    healthy_seconds: float = Field(default=60.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _ordered(self) -> RestartPolicy:
        if self.max_seconds < self.first_seconds:
            raise ValueError("max_seconds must not be below first_seconds")
        return self

    def pause(self, quick_exits: int) -> float:
        """The pause after the ``quick_exits``-th exit in a row (0 for the first)."""
        return min(self.first_seconds * 2.0 ** min(quick_exits, 32), self.max_seconds)


@dataclass
class _Watch:
    """What the supervisor knows of one process."""

    group: ProcessGroup
    started: float
    quick_exits: int = 0
    down_since: float | None = None  # set while it is down, waiting for its restart
    pause: float = 0.0
    exit_status: str = ""
    held: bool = False


class Supervisor:
    """Keeps the processes of some groups running; ``check()`` is one pass, ``run()`` loops."""

    def __init__(
        self,
        groups: Sequence[ProcessGroup],
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] = print,
    ) -> None:
        self.policy = policy or RestartPolicy()
        self._clock, self._say = clock, say
        now = clock()
        self._watches = {name: _Watch(group, now) for group in groups for name in group.status()}

    def check(self) -> list[str]:
        """Notices exits and restarts those whose pause is over. Returns the processes stopped on
        purpose (PID file removed), which the caller takes as the signal to stop everything."""
        now = self._clock()
        stopped: list[str] = []
        exited = {name for group in {w.group for w in self._watches.values()} for name in group.exited()}
        for name, watch in self._watches.items():
            if watch.down_since is None and name in exited:
                self._schedule(name, watch, now)
            elif watch.down_since is None and watch.group.status()[name] is None:
                stopped.append(name)
            if (since := watch.down_since) is not None and now >= since + watch.pause and not watch.held:
                self._restart(name, watch, now, waited=now - since)
        return stopped

    def run(self, interval: float = 0.5) -> list[str]:
        """Checks every ``interval`` seconds until a process is stopped on purpose; returns those."""
        while not (stopped := self.check()):
            time.sleep(interval)
        return stopped

    def hold(self, name: str) -> None:
        """Leaves ``name`` down once it exits, until ``release``."""
        self._watches[name].held = True

    def release(self, name: str) -> None:
        self._watches[name].held = False

    def _schedule(self, name: str, watch: _Watch, now: float) -> None:
        if now - watch.started >= self.policy.healthy_seconds:
            watch.quick_exits = 0
        watch.exit_status = watch.group.exit_status(name)
        watch.down_since, watch.pause = now, self.policy.pause(watch.quick_exits)
        watch.quick_exits += 1

    def _restart(self, name: str, watch: _Watch, now: float, waited: float) -> None:
        group = watch.group
        try:
            count = group.restart(name)
        except Exception as error:  # say, a port still taken: tried again after a longer pause
            self._say(f"{time.strftime('%T')} {name} {group.kind} could not be restarted: {error}")
            watch.down_since, watch.pause = now, self.policy.pause(watch.quick_exits)
            watch.quick_exits += 1
            return
        watch.down_since, watch.started = None, now
        self._say(
            f"{time.strftime('%T')} {name} {group.kind} exited ({watch.exit_status}); restarted after "
            f"{waited:.0f} s as pid {group.status()[name]} (restart {count}); see {group.log_path(name)}"
        )

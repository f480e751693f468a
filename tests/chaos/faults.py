"""Faults at times drawn from the seed, one at a time, and the time from each to recovery.

``plan`` is pure (seed in, faults out). ``inject`` carries one out and heals it. After each,
a canary (an export created through the API once the fault is healed) must finish: the time from
the fault's start to the canary's terminal status is that fault's recovery time.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from dataclasses import dataclass, field
from enum import StrEnum

from exporter.local.services import replica_names
from tests.chaos.proxy import Mode
from tests.chaos.sinks import SinkMode
from tests.chaos.system import RENDER_LEASE_SECONDS, REPLICAS, System

SERVICES = [
    name
    for service in ("request_api", "scheduler", "renderer", "notifier", "ingestor")
    for name in replica_names(service, REPLICAS.get(service, 1))
]


class Kind(StrEnum):
    KILL = "kill"  # SIGKILL a service, restart it after the pause
    FREEZE = "freeze"  # SIGSTOP a service longer than the leases, then SIGCONT
    RESTART = "restart"  # restart a server: mongo, kafka or s3
    SLOW = "slow"  # added latency through a proxy
    DROP = "drop"  # connections cut through a proxy
    PARTITION = "partition"  # a proxy black-holes everything
    SMTP = "smtp"  # the SMTP server answers 4xx/5xx or hangs
    CHAT = "chat"  # the chat receiver answers 5xx, 429 or hangs


@dataclass(frozen=True)
class Fault:
    at: float  # seconds from the start of the run
    kind: Kind
    target: str
    seconds: float  # how long it lasts (the pause before a restart)
    detail: str = ""

    def describe(self) -> str:
        extra = f" {self.detail}" if self.detail else ""
        return f"{self.kind.value} {self.target}{extra} for {self.seconds:.0f} s"


def plan(seed: int, seconds: float, warmup: float = 20.0, mean_gap: float = 12.0) -> list[Fault]:
    """Faults from ``warmup`` to the end, one after another, every kind drawn alike."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    at = warmup
    while at < seconds:
        kind = rng.choice(list(Kind))
        faults.append(_fault(rng, kind, at))
        at += faults[-1].seconds + rng.expovariate(1 / mean_gap)
    return faults


def _fault(rng: random.Random, kind: Kind, at: float) -> Fault:
    if kind is Kind.KILL:
        return Fault(at, kind, rng.choice(SERVICES), rng.uniform(1, 10))
    if kind is Kind.FREEZE:
        target = rng.choice([name for name in SERVICES if name != "request_api"])
        return Fault(at, kind, target, RENDER_LEASE_SECONDS + rng.uniform(5, 15))
    if kind is Kind.RESTART:
        return Fault(at, kind, rng.choice(["mongo", "kafka", "s3"]), rng.uniform(1, 8))
    if kind in (Kind.SLOW, Kind.DROP, Kind.PARTITION):
        seconds = rng.uniform(1, 5) if kind is Kind.DROP else rng.uniform(5, 20)
        detail = f"+{rng.uniform(0.05, 1.0):.2f} s" if kind is Kind.SLOW else ""
        return Fault(at, kind, rng.choice(["mongo", "s3"]), seconds, detail)
    modes = [SinkMode.TRANSIENT, SinkMode.HANG, SinkMode.THROTTLE]
    if rng.random() < 0.2:
        modes.append(SinkMode.REFUSE)
    return Fault(
        at, kind, "smtp" if kind is Kind.SMTP else "chat", rng.uniform(5, 20), rng.choice(modes).value
    )


@dataclass
class Injected:
    fault: Fault
    began: float  # monotonic
    healed: float = 0.0
    recovered: float | None = None  # when the canary after it finished
    notes: list[str] = field(default_factory=list)

    @property
    def recovery_seconds(self) -> float | None:
        return None if self.recovered is None else self.recovered - self.began


async def inject(system: System, fault: Fault) -> Injected:
    """Carries the fault out and heals it; what could not be done is noted, not raised."""
    done = Injected(fault, time.monotonic())
    try:
        await _carry_out(system, fault)
    except Exception as error:
        done.notes.append(f"{type(error).__name__}: {error}")
        await asyncio.sleep(1)
        try:
            await system.ensure_running()
        except Exception as again:
            done.notes.append(f"could not restart: {again}")
    done.healed = time.monotonic()
    return done


async def _carry_out(system: System, fault: Fault) -> None:
    if fault.kind is Kind.KILL:
        await system.signal(fault.target, signal.SIGKILL)
        await asyncio.sleep(fault.seconds)
        await system.ensure_running()
    elif fault.kind is Kind.FREEZE:
        await system.signal(fault.target, signal.SIGSTOP)
        try:
            await asyncio.sleep(fault.seconds)
        finally:
            await system.signal(fault.target, signal.SIGCONT)
    elif fault.kind is Kind.RESTART:
        await system.restart_server(fault.target, fault.seconds)
    elif fault.kind in (Kind.SLOW, Kind.DROP, Kind.PARTITION):
        proxy = system.proxies[fault.target]
        mode = {Kind.SLOW: Mode.SLOW, Kind.DROP: Mode.DROP, Kind.PARTITION: Mode.BLACKHOLE}[fault.kind]
        proxy.set(mode, float(fault.detail.strip("+ s") or 0) if mode is Mode.SLOW else 0.0)
        try:
            await asyncio.sleep(fault.seconds)
        finally:
            proxy.set(Mode.PASS)
    elif fault.kind is Kind.SMTP:
        system.smtp.mode = SinkMode(fault.detail)
        try:
            await asyncio.sleep(fault.seconds)
        finally:
            system.smtp.mode = SinkMode.OK
    else:
        system.chat.set(SinkMode(fault.detail))
        try:
            await asyncio.sleep(fault.seconds)
        finally:
            system.chat.set(SinkMode.OK)

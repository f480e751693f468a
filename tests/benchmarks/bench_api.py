"""``make bench-api``: request-api throughput and latency against the real local servers.

10,000 creates (seed 000's body) from 50 concurrent keep-alive clients, then 10,000 gets of
what was created. Beside them, in the same run: the store's own ceiling for the same writes (a
request, its IAM event and an idempotency key per create, inserted in transactions of 50 by one
writer, which is what the API's group commit does), and the CPU each process spent.

The load generator speaks raw HTTP/1.1 on asyncio streams so that its own overhead stays small
next to the server's on this 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from exporter.adapters.mongo.client import (
    IDEMPOTENCY,
    INDEXES,
    OUTBOX,
    REQUESTS,
    connect,
    database,
    in_transaction,
)
from exporter.settings import Settings
from tests.benchmarks.harness import CpuMeter, local_servers, percentile, server_pid, service
from tests.request_cases import SEED_000

TARGET_CREATES_PER_SECOND = 1000
TARGET_P99_MS = 100.0


class HttpConnection:
    """One keep-alive HTTP/1.1 connection; enough of the protocol for this API's answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self._reader, self._writer, self._host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host)

    async def request(self, method: str, path: str, user: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\nX-User-Id: {user}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        status_line, *header_lines = (await self._reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
        length = int(headers.get("content-length", "0"))
        return int(status_line.split(" ", 2)[1]), await self._reader.readexactly(length)

    def close(self) -> None:
        self._writer.close()


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def line(self) -> str:
        ordered = sorted(self.latencies)
        return (
            f"{self.name:<8} {len(ordered):>6} requests in {self.elapsed:6.2f} s = {self.rate:7.0f}/s"
            f"   p50 {percentile(ordered, 0.5) * 1000:6.1f} ms"
            f"   p99 {percentile(ordered, 0.99) * 1000:6.1f} ms"
        )


@dataclass(frozen=True)
class Outcome:
    create: Phase
    get: Phase
    ceiling: float

    def summary(self) -> str:
        p99 = percentile(sorted(self.create.latencies), 0.99) * 1000
        return (
            f"creates {self.create.rate:,.0f}/s (target >= {TARGET_CREATES_PER_SECOND}: "
            f"{_verdict(self.create.rate >= TARGET_CREATES_PER_SECOND)}), create p99 {p99:.0f} ms "
            f"(target < {TARGET_P99_MS:.0f}: {_verdict(p99 < TARGET_P99_MS)}), "
            f"gets {self.get.rate:,.0f}/s p99 {percentile(sorted(self.get.latencies), 0.99) * 1000:.0f} ms, "
            f"store ceiling {self.ceiling:,.0f} creates/s"
        )


Call = tuple[str, str, bytes]  # method, path, body


async def run_phase(
    name: str, host: str, port: int, work: dict[str, list[Call]], expect: int
) -> tuple[Phase, list[bytes]]:
    """One keep-alive client per user, each making its calls in turn; every answer must have
    status ``expect``."""
    phase = Phase(name)
    answers: list[bytes] = []

    async def client(user: str, calls: list[Call]) -> None:
        connection = await HttpConnection.open(host, port)
        try:
            for method, path, body in calls:
                started = time.perf_counter()
                status, answer = await connection.request(method, path, user, body)
                phase.latencies.append(time.perf_counter() - started)
                if status != expect:
                    raise RuntimeError(f"{method} {path} answered {status}: {answer[:300]!r}")
                answers.append(answer)
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(user, calls) for user, calls in work.items()))
    phase.elapsed = time.perf_counter() - started
    return phase, answers


async def store_ceiling(settings: Settings, creates: int, batch: int = 50) -> float:
    """Creates/s the store allows for the same writes, grouped as the API groups them."""
    client = connect(settings)
    db = database(client, settings)
    request = {**SEED_000, "tenant": "bench", "owner": "ceiling"}
    # Own collections with the real ones' indexes, so no service reads what this writes.
    names = {name: f"ceiling_{name}" for name in (REQUESTS, OUTBOX, IDEMPOTENCY)}
    for name, twin in names.items():
        if INDEXES.get(name):
            await db[twin].create_indexes(INDEXES[name])
    try:
        started = time.perf_counter()
        for _ in range(creates // batch):

            async def write(session: Any) -> None:
                ids = [uuid.uuid4().hex for _ in range(batch)]
                for name in (REQUESTS, OUTBOX, IDEMPOTENCY):
                    documents = [{**request, "_id": i} for i in ids]
                    await db[names[name]].insert_many(documents, session=session)

            await in_transaction(client, write)
        return (creates // batch) * batch / (time.perf_counter() - started)
    finally:
        await client.close()


async def outbox_drained(settings: Settings) -> float:
    """Seconds until every IAM event of the run has left the outbox (was published)."""
    client = connect(settings)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(120):
            while await database(client, settings)[OUTBOX].count_documents({}) > 0:
                await asyncio.sleep(0.1)
        return time.perf_counter() - started
    finally:
        await client.close()


async def benchmark(settings: Settings, meter: CpuMeter, requests: int, clients: int) -> Outcome:
    host, port = settings.api.host, settings.api.port
    ceiling = await store_ceiling(settings, requests)
    create_call = ("POST", "/exports", json.dumps(SEED_000).encode())
    users = [f"bench-{index}" for index in range(clients)]
    await run_phase("warm-up", host, port, {user: [create_call] * 10 for user in users}, 201)

    meter.start()
    creates = {user: [create_call] * (requests // clients) for user in users}
    create, answers = await run_phase("create", host, port, creates, 201)
    drain = await outbox_drained(settings)
    create_cpu = meter.stop()

    # Each client reads back its own user's requests (another user would get 404).
    gets: dict[str, list[Call]] = {}
    for created in map(json.loads, answers):
        gets.setdefault(created["owner"], []).append(("GET", f"/exports/{created['id']}", b""))
    meter.start()
    get, _ = await run_phase("get", host, port, gets, 200)
    get_cpu = meter.stop()

    print(create.line())
    print(get.line())
    print(f"outbox drained {drain:.2f} s after the last create (every create's IAM event published)")
    print(f"store ceiling for the same writes (transactions of 50, one writer): {ceiling:,.0f} creates/s")
    for label, cpu, phase in (("create", create_cpu, create), ("get", get_cpu, get)):
        shares = ", ".join(f"{name} {seconds / phase.elapsed * 100:.0f}%" for name, seconds in cpu.items())
        print(f"CPU during {label} (of one core): {shares}")
    return Outcome(create, get, ceiling)


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="API processes, one run each")
    arguments = parser.parse_args()
    outcomes: dict[int, Outcome] = {}
    for workers in arguments.workers:
        print(f"-- request-api with {workers} worker process(es), fresh servers")
        with local_servers() as (settings, servers):
            settings = settings.model_copy(
                update={"api": settings.api.model_copy(update={"workers": workers})}
            )
            api_url = f"http://{settings.api.host}:{settings.api.port}/health"
            with service(settings, "request_api", ready_url=api_url) as api_pid:
                meter = CpuMeter({"request-api": api_pid, "MongoDB server": server_pid(servers, "mongo")})
                outcomes[workers] = asyncio.run(
                    benchmark(settings, meter, arguments.requests, arguments.clients)
                )
                print(outcomes[workers].summary())
    print("SUMMARY " + "; ".join(f"{n} worker(s): {outcome.summary()}" for n, outcome in outcomes.items()))


if __name__ == "__main__":
    main()

"""``make bench-metrics``: what the metrics cost, with and without them in one run.

The request-api (creates and gets, as ``make bench-api`` drives them) and the renderer (a CSV
export end to end, as ``make bench-render`` drives it) each run several times on the same
servers, metrics on, off and off again in turn (``EXPORTER_METRICS__ENABLED``; the second run
without them is the control, see ``MODES``): three request-api processes at once, one of each,
taking bursts in turn; the renderer restarted for each mode, its exports in rotating order. The
machine is shared, so no mode gets the quiet or the busy minutes alone; each figure is its
mode's total work over its total time. With metrics on, the service's listener is scraped every
``SCRAPE_SECONDS`` for the whole round. The cost is judged on the service's CPU per request or
row (see ``Measure``); the last line holds it against the target: metrics cost less than 5%.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client import generate_latest
from starlette.types import Message, Receive, Scope, Send

from exporter import metrics
from exporter.adapters.kafka import client_options, consumer_metrics
from exporter.local.servers import free_ports
from exporter.metrics.http import HttpMetrics
from exporter.runtime import Runtime
from exporter.settings import Settings
from tests.benchmarks.bench_api import Call, run_phase
from tests.benchmarks.bench_render import seed, verdict
from tests.benchmarks.harness import CpuMeter, local_servers, server_pid, service
from tests.benchmarks.render_export import Renderer
from tests.request_cases import SEED_000

TARGET_COST = 0.05
# As deploy/prometheus/prometheus.yml scrapes.
SCRAPE_SECONDS = 15.0
MIDDLEWARE_CALLS = 50_000
# Metrics on, off, and off again: the two runs without metrics differ only by chance, which
# shows how much of the on/off difference the machine's noise could explain.
ON, OFF, CONTROL = "on", "off", "off again"
MODES = (ON, OFF, CONTROL)


def modes() -> dict[str, float]:
    return dict.fromkeys(MODES, 0.0)


@dataclass
class Measure:
    """One measure's totals with metrics on and off: requests (or rows), seconds, and the CPU
    seconds the service spent on them.

    The cost is judged on CPU per request (or row): the services are CPU-bound here, so their
    throughput is the inverse of it, and unlike a wall-clock rate it hardly depends on what the
    machine's other tenants do (measured at a load average of 15 on 2 cores, wall-clock rates of
    the same mode differed by 2x from one round to the next)."""

    name: str
    done: dict[str, float] = field(default_factory=modes)
    seconds: dict[str, float] = field(default_factory=modes)
    cpu: dict[str, float] = field(default_factory=modes)

    def add(self, mode: str, done: float, seconds: float, cpu: float) -> None:
        self.done[mode] += done
        self.seconds[mode] += seconds
        self.cpu[mode] += cpu

    def rate(self, mode: str) -> float:
        return self.done[mode] / self.seconds[mode]

    def cpu_us(self, mode: str) -> float:
        return self.cpu[mode] * 1e6 / self.done[mode]

    @property
    def cost(self) -> float:
        """The throughput lost to metrics, from CPU per unit: 1 - off/on."""
        return 1 - self.cpu_us(OFF) / self.cpu_us(ON)

    @property
    def noise(self) -> float:
        """The same figure between the two runs without metrics."""
        return abs(1 - self.cpu_us(OFF) / self.cpu_us(CONTROL))

    def line(self) -> str:
        cpu = ", ".join(f"{mode} {self.cpu_us(mode):,.2f}" for mode in MODES)
        rate = ", ".join(f"{mode} {self.rate(mode):,.0f}/s" for mode in MODES)
        return (
            f"{self.name}: CPU µs each {cpu}; wall rate {rate}; cost {self.cost * 100:+.1f}% "
            f"(noise ±{self.noise * 100:.1f}%)"
        )


def with_metrics(settings: Settings, mode: str, api_port: int | None = None) -> Settings:
    """``settings`` with metrics on (a listener on a free port) or off; the API on ``api_port``."""
    enabled = mode == ON
    port = free_ports(1)[0] if enabled else None
    metrics = settings.metrics.model_copy(update={"enabled": enabled, "port": port})
    api = settings.api.model_copy(update={"port": api_port or settings.api.port})
    return settings.model_copy(update={"metrics": metrics, "api": api})


@contextlib.asynccontextmanager
async def scraped(settings: Settings) -> AsyncIterator[None]:
    """Scrapes the listener, if any, as Prometheus would, until the block ends."""
    if settings.metrics.port is None:
        yield
        return
    url = f"http://{settings.metrics.host}:{settings.metrics.port}/metrics"

    async def scrape() -> None:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
            while True:
                (await client.get(url)).raise_for_status()
                await asyncio.sleep(SCRAPE_SECONDS)

    task = asyncio.create_task(scrape())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def order(number: int) -> tuple[str, ...]:
    """The modes in a different order each round."""
    shift = number % len(MODES)
    return MODES[shift:] + MODES[:shift]


async def api_bursts(
    apis: dict[str, Settings], pids: dict[str, int], bursts: int, burst: int, clients: int
) -> list[Measure]:
    """Bursts of creates then gets, to the API with metrics and the one without in turn: both
    meet the same load from the machine's other tenants, which a long run of each would not."""
    creates, gets = Measure("request-api creates"), Measure("request-api gets")
    create_call = ("POST", "/exports", json.dumps(SEED_000).encode())
    users = [f"bench-{index}" for index in range(clients)]
    for settings in apis.values():
        await run_phase(
            "warm-up", settings.api.host, settings.api.port, {u: [create_call] * 5 for u in users}, 201
        )
    async with scraped(apis[ON]):
        for number in range(bursts):
            for mode in order(number):
                host, port = apis[mode].api.host, apis[mode].api.port
                meter = CpuMeter({"api": pids[mode]})
                work = {user: [create_call] * (burst // clients) for user in users}
                meter.start()
                create, answers = await run_phase("create", host, port, work, 201)
                creates.add(mode, len(create.latencies), create.elapsed, meter.stop()["api"])
                reads: dict[str, list[Call]] = {}
                for created in map(json.loads, answers):
                    reads.setdefault(created["owner"], []).append(("GET", f"/exports/{created['id']}", b""))
                meter.start()
                get, _ = await run_phase("get", host, port, reads, 200)
                gets.add(mode, len(get.latencies), get.elapsed, meter.stop()["api"])
    for measure in (creates, gets):
        print(f"  {measure.line()}", flush=True)
    return [creates, gets]


def bench_api(settings: Settings, bursts: int, burst: int, clients: int) -> list[Measure]:
    """The request-api twice at once on the same servers, metrics on in one, off in the other."""
    ports = free_ports(len(MODES), avoid=[settings.api.port])
    apis = {mode: with_metrics(settings, mode, port) for mode, port in zip(MODES, ports, strict=True)}
    with contextlib.ExitStack() as running:
        pids = {}
        for mode, api in apis.items():
            health = f"http://{api.api.host}:{api.api.port}/health"
            pids[mode] = running.enter_context(service(api, "request_api", ready_url=health))
        return asyncio.run(api_bursts(apis, pids, bursts, burst, clients))


async def render_rounds(settings: Settings, store_pid: int, rounds: int, rows: int) -> Measure:
    """The renderer is one consumer group: one process at a time, restarted for each mode."""
    exports = Measure(f"renderer csv, {rows:,} rows")
    runtime = Runtime.build(settings)
    await runtime.prepare()
    producer = AIOKafkaProducer(**client_options(settings.kafka), linger_ms=0)
    await producer.start()
    try:
        print(f"seeding {rows:,} readings ...", flush=True)
        await seed(runtime, rows)
        for round_ in range(rounds):
            for mode in order(round_):
                run = with_metrics(settings, mode)
                with tempfile.TemporaryFile() as log, service(run, "renderer", log=log) as pid:
                    renderer = Renderer(runtime, producer, pid, store_pid)
                    await renderer.export(
                        "csv", 1_000, f"warm-{round_}-{mode.replace(' ', '-')}"
                    )  # joins the group
                    async with scraped(run):
                        export = await renderer.export(
                            "csv", rows, f"bench-{round_}-{mode.replace(' ', '-')}"
                        )
                print(f"  metrics {mode:<9}  csv {export}", flush=True)
                exports.add(mode, rows, rows / export.rate, export.client_us * rows / 1e6)
        return exports
    finally:
        await producer.stop()
        await runtime.close()


async def middleware_cost() -> float:
    """CPU µs the HTTP metrics middleware adds to one request, in process, over a bare ASGI app
    that answers at once (the route template as the router leaves it in the scope)."""

    class Route:
        path = "/exports/{request_id}"

    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = Route
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        return None

    used = {}
    for app in (bare, HttpMetrics(bare)):
        started = time.process_time()
        for _ in range(MIDDLEWARE_CALLS):
            await app({"type": "http", "method": "GET"}, receive, send)
        used[app] = (time.process_time() - started) / MIDDLEWARE_CALLS * 1e6
    return used[app] - used[bare]


def scrape_cost() -> float:
    """CPU ms of one scrape of this process's registry (every family, FastStream's included)."""
    consumer_metrics()
    started = time.process_time()
    for _ in range(100):
        generate_latest(metrics.REGISTRY)
    return (time.process_time() - started) * 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bursts", type=int, default=16, help="request-api bursts of each mode")
    parser.add_argument("--burst", type=int, default=500, help="creates (then as many gets) a burst")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="CSV exports of each mode")
    parser.add_argument("--rows", type=int, default=500_000, help="the CSV export's readings")
    arguments = parser.parse_args()
    with local_servers() as (settings, servers):
        print("-- request-api, metrics on and off in turn", flush=True)
        measures = bench_api(settings, arguments.bursts, arguments.burst, arguments.clients)
        print("-- renderer, metrics on and off in turn", flush=True)
        store = server_pid(servers, "mongo")
        measures.append(asyncio.run(render_rounds(settings, store, arguments.rounds, arguments.rows)))
    middleware, scrape = asyncio.run(middleware_cost()), scrape_cost()
    print(f"in process: the HTTP middleware {middleware:.1f} µs a request, one scrape {scrape:.2f} ms")
    for measure in measures:
        print(measure.line())
    verdicts = [
        f"{m.name} {m.cost * 100:+.1f}% ±{m.noise * 100:.1f}% ({verdict(m.cost < TARGET_COST)})"
        for m in measures
    ]
    print(f"bench-metrics: cost of metrics (target < {TARGET_COST * 100:.0f}%): " + "; ".join(verdicts))


if __name__ == "__main__":
    main()

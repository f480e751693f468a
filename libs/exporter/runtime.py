"""The bootstrap: builds each adapter once per process and hands services what they need.

Every service starts the same way (waits for its dependencies; indexes, topics, bucket, outbox
relay; liveness) and stops the same way, so the services themselves hold only their handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pymongo
import uvloop
from faststream import BaseMiddleware, FastStream
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from faststream.specification import AsyncAPI
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from exporter import log_context
from exporter.adapters.kafka import KafkaPublisher, ensure_topics, make_broker
from exporter.adapters.mongo.admissions import AdmissionRepository
from exporter.adapters.mongo.client import Document, connect, connect_blocking, database, ensure_indexes
from exporter.adapters.mongo.compaction import CompactionStore
from exporter.adapters.mongo.entities import EntityRepository
from exporter.adapters.mongo.grants import GrantRepository
from exporter.adapters.mongo.idempotency import IdempotencyRepository
from exporter.adapters.mongo.jobs import JobRepository
from exporter.adapters.mongo.measurements import MeasurementRepository
from exporter.adapters.mongo.numbers import NumericIds
from exporter.adapters.mongo.outbox import OutboxRepository
from exporter.adapters.mongo.requests import RequestRepository
from exporter.adapters.mongo.things import ThingRepository
from exporter.adapters.storage import ObjectStore
from exporter.liveness import Liveness, Readiness, describe_failure, exit_when_stalled, write_reports
from exporter.service_layer.group_commit import GroupCommit
from exporter.service_layer.outbox import OutboxRelay
from exporter.settings import Settings, get_settings
from exporter.settings.process import LivenessSettings

log = logging.getLogger(__name__)
# Pauses between start-up attempts at a dependency: doubling from the first up to the last.
WAIT_FIRST_SECONDS, WAIT_MAX_SECONDS = 0.5, 5.0


class DependencyUnavailable(RuntimeError):
    """MongoDB, Kafka or S3 did not answer within the start-up wait."""


@dataclass
class Runtime:
    settings: Settings
    broker: KafkaBroker
    mongo: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    storage: ObjectStore
    requests: RequestRepository
    jobs: JobRepository
    measurements: MeasurementRepository
    compaction: CompactionStore
    things: ThingRepository
    entities: EntityRepository
    outbox: OutboxRepository
    idempotency: IdempotencyRepository
    admissions: AdmissionRepository
    grants: GrantRepository
    numbers: NumericIds
    group_commit: GroupCommit
    publisher: KafkaPublisher
    relay: OutboxRelay
    liveness: Liveness
    # Set when the process begins to stop: background work spawned with a grace finishes its pass.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _graced: list[tuple[asyncio.Task[None], float]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, broker: KafkaBroker | None = None) -> Runtime:
        broker = broker or make_broker(settings)
        mongo = connect(settings)
        db = database(mongo, settings)
        outbox = OutboxRepository(db)
        publisher = KafkaPublisher.from_settings(broker, settings.kafka)
        relay = OutboxRelay(outbox, publisher, settings.outbox)
        return cls(
            settings=settings,
            broker=broker,
            mongo=mongo,
            db=db,
            storage=ObjectStore(settings.storage),
            requests=RequestRepository(db),
            jobs=JobRepository(db),
            measurements=MeasurementRepository(db),
            compaction=CompactionStore(db),
            things=ThingRepository(db),
            entities=EntityRepository(db),
            outbox=outbox,
            idempotency=IdempotencyRepository(db),
            admissions=AdmissionRepository(db),
            grants=GrantRepository(db),
            numbers=NumericIds(db),
            group_commit=GroupCommit(
                functools.partial(connect_blocking, settings), settings.mongo.database, relay.publish_soon
            ),
            publisher=publisher,
            relay=relay,
            liveness=Liveness(settings.liveness.stall_seconds, settings.liveness.busy_seconds),
        )

    async def prepare(self) -> None:
        """Idempotent set-up every service may run at start, in any order. A dependency still
        starting (or restarting) is waited for, saying so, rather than crashed on: a crash would
        only be repeated by a supervisor until it answers."""
        settings = self.settings
        await until_answers("MongoDB", mongo_hosts(settings), self._ping_mongo, settings.liveness)
        await ensure_indexes(self.db)
        topics = functools.partial(ensure_topics, settings)
        await until_answers("Kafka", settings.kafka.bootstrap_servers, topics, settings.liveness)
        await until_answers("S3", settings.storage.endpoint, self.storage.ensure_bucket, settings.liveness)

    async def _ping_mongo(self, within: float | None = None) -> None:
        # The client's own server selection would wait 30 s before it said why.
        with pymongo.timeout(within or self.settings.liveness.dependency_attempt_seconds):
            await self.db.command("ping")

    async def _ping_kafka(self, within: float) -> None:
        """Cluster metadata from the broker's own admin connection."""
        if not await self.broker.ping(within):
            raise ConnectionError(f"no cluster metadata within {within:g} s")

    @functools.cached_property
    def readiness(self) -> Readiness:
        """This process's liveness and whether MongoDB, Kafka and S3 answer (``exporter.liveness``)."""
        settings = self.settings.liveness
        timeout = settings.readiness_timeout_seconds
        checks: dict[str, Callable[[], Awaitable[object]]] = {
            "mongodb": functools.partial(self._ping_mongo, timeout),
            "kafka": functools.partial(self._ping_kafka, timeout),
            "s3": self.storage.check_bucket,
        }
        return Readiness(self.liveness, checks, settings.readiness_interval_seconds, timeout)

    async def start(self, *, relay: bool) -> None:
        """What a process not run by FastStream does before it serves (FastStream's own apps do the
        same through ``stream_service``). ``relay``: this process writes the outbox."""
        await self.prepare()
        await self.broker.start()
        if relay:
            await self.start_relay()
        await self.start_readiness()

    async def stop(self) -> None:
        """The counterpart of ``start``: the broker stops last, once the relay sent what it had."""
        await self.close()
        await self.broker.stop()

    async def start_relay(self) -> None:
        """Publishes this process's outbox writes; needs a connected broker."""
        self.spawn(self.relay.run(self.liveness))

    async def start_readiness(self) -> None:
        """Checks the dependencies in the background (needs a connected broker); and, if so set,
        ends the process once it has stalled for ``liveness.exit_after_seconds``."""
        self.spawn(self.readiness.run())
        settings = self.settings.liveness
        if settings.exit_after_seconds is not None:
            self.spawn(
                exit_when_stalled(self.liveness, settings.exit_after_seconds, settings.file_interval_seconds)
            )

    async def start_health_file(self) -> None:
        """Writes the readiness report (liveness within) where ``liveness.file`` says, if anywhere."""
        if (path := self.settings.liveness.file) is not None:
            self.spawn(write_reports(self.readiness, path, self.settings.liveness.file_interval_seconds))

    def spawn(self, work: Coroutine[Any, Any, None], *, grace: float = 0.0) -> None:
        """Runs ``work`` in the background until ``close``. With a ``grace``, ``close`` sets
        ``stopping`` and lets it end by itself for that long before cancelling it: a pass in
        hand may finish, yet a stop never hangs."""
        task = asyncio.create_task(work)
        self._tasks.append(task)
        if grace > 0:
            self._graced.append((task, grace))

    async def close(self) -> None:
        self.stopping.set()
        if self._graced:
            await asyncio.wait([task for task, _ in self._graced], timeout=max(g for _, g in self._graced))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.group_commit.close()  # its last commits hand their events to the relay
        # Events committed but not yet sent would otherwise wait for their lease to run out.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.relay.publish_handed()
        await self.mongo.close()


async def until_answers(
    name: str, address: str, attempt: Callable[[], Awaitable[object]], settings: LivenessSettings
) -> None:
    """Repeats ``attempt`` with growing pauses until it succeeds, logging the wait once per reason;
    gives up after ``settings.dependency_wait_seconds``. Each attempt first connects to
    ``address``: a refused connection is said at once, where a client library would retry
    and time out without saying why."""
    loop = asyncio.get_running_loop()
    began, pause, said = loop.time(), WAIT_FIRST_SECONDS, ""
    while True:
        try:
            async with asyncio.timeout(settings.dependency_attempt_seconds):
                await reachable(address)
                await attempt()
        except Exception as error:
            reason = describe_failure(error, settings.dependency_attempt_seconds)
            if loop.time() + pause - began > settings.dependency_wait_seconds:
                raise DependencyUnavailable(
                    f"{name} at {address} did not answer within "
                    f"{settings.dependency_wait_seconds:.0f} s: {reason}"
                ) from error
            if reason != said:
                log.warning("waiting for %s at %s: %s", name, address, reason)
                said = reason
            await asyncio.sleep(pause)
            pause = min(pause * 2, WAIT_MAX_SECONDS)
        else:
            if said:
                log.info("%s at %s answers after %.1f s", name, address, loop.time() - began)
            return


async def reachable(addresses: str) -> None:
    """Returns once one of the ``host:port`` addresses accepts a TCP connection (at once for one
    without a port, such as a DNS seed list's name); otherwise raises the last refusal."""
    refusal: OSError | None = None
    for address in addresses.split(","):
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            return
        try:
            _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except OSError as error:
            refusal = error
        else:
            writer.close()
            return
    if refusal is not None:
        raise refusal


def mongo_hosts(settings: Settings) -> str:
    """The hosts of the MongoDB URI, without its credentials or options."""
    rest = settings.mongo.uri.get_secret_value().partition("://")[2]
    return rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]


class TimedIntake(BaseMiddleware):
    """Times each message or batch a consumer handles, so a handler stuck on one stalls liveness."""

    def __init__(self, msg: Any, /, *, context: Any, liveness: Liveness) -> None:
        super().__init__(msg, context=context)
        self._liveness = liveness

    async def consume_scope(self, call_next: Callable[..., Any], msg: StreamMessage[Any]) -> Any:
        records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
        topic = getattr(records[0], "topic", "?") if records else "?"
        with self._liveness.working(f"consumer {topic}"):
            return await call_next(msg)


def configure_logging(settings: Settings) -> None:
    log_context.configure(settings.log_level, settings.log_format)


def freeze_startup_heap() -> None:
    """Takes what start-up allocated (modules, models, schemas, clients) out of the garbage
    collector's sight. Otherwise every full collection walks all of it again: in the request-api
    those pauses took 80-110 ms and were its slowest answers; with the heap frozen, 2-5 ms."""
    gc.freeze()


def stream_service(settings: Settings, title: str, *, relay: bool) -> tuple[FastStream, Runtime]:
    """A FastStream app with the runtime's start and stop wired; the caller adds its subscribers.

    ``relay`` is for services that write to the outbox and so must publish it.
    """
    runtime = Runtime.build(settings)
    app = FastStream(runtime.broker, specification=AsyncAPI(title=title, version="1.0.0"))
    runtime.broker.add_middleware(functools.partial(TimedIntake, liveness=runtime.liveness))
    app.on_startup(runtime.prepare)
    if relay:
        app.after_startup(runtime.start_relay)
    app.after_startup(runtime.start_readiness)
    app.after_startup(runtime.start_health_file)
    app.after_startup(freeze_startup_heap)
    app.on_shutdown(runtime.close)
    return app, runtime


def run_stream_service(create_app: Callable[[Settings], FastStream], *, fast_loop: bool = False) -> None:
    """The ``python -m <service>`` entry point of every Kafka-consuming service.

    ``fast_loop`` runs it on uvloop: for a service whose time goes to many small network
    exchanges, where the standard loop's own bookkeeping is a good part of the cost.
    """
    settings = get_settings()
    configure_logging(settings)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if fast_loop else None) as runner:
        runner.run(create_app(settings).run())

"""The unit of work: one MongoDB transaction, the repositories used in it, the events it raises.

It sits in ``exporter.service_layer``: every service's use cases open it, so it belongs to none of
them, and it drives adapters (MongoDB's session, the outbox relay), so it is not domain.

A use case hands ``UnitOfWork.run`` its work, a function of a ``Transaction``. The work writes
through the transaction's repositories and raises events on it; they go to the outbox in the same
transaction, and to the relay once it has committed. PyMongo runs the work again when the
transaction meets a transient error: each attempt gets a fresh ``Transaction``, so the events of
an attempt that was rolled back are never published.

``BlockingUnitOfWork`` keeps the same promise for a thread with a blocking client of its own (the
request-api's group commit, see ``group_commit``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import bson
from pymongo import AsyncMongoClient, MongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.client_session import ClientSession
from pymongo.database import Database

from exporter.adapters.mongo.admissions import AdmissionRepository
from exporter.adapters.mongo.client import OUTBOX, Document, in_transaction, in_transaction_once
from exporter.adapters.mongo.compaction import CompactionStore
from exporter.adapters.mongo.idempotency import IdempotencyRepository
from exporter.adapters.mongo.job_queue import ActiveJob
from exporter.adapters.mongo.jobs import JobRepository
from exporter.adapters.mongo.outbox import merged_entry, outbox_message
from exporter.adapters.mongo.requests import RequestRepository
from exporter.contracts.events import Envelope
from exporter.service_layer.outbox import OutboxRelay
from exporter.topics import Topic

if TYPE_CHECKING:  # the runtime builds the group commit, which runs a unit of work
    from exporter.runtime import Runtime

T = TypeVar("T")

# An outbox entry is one document, which the store takes up to 16 MiB; many large events raised
# together (a scheduler batch copies each request into its job's event) are split into entries
# this big.
ENTRY_BYTES = 8 * 1024 * 1024


@dataclass
class Transaction:
    """One attempt at the work: its session, the repositories, and the outbox entries it raised."""

    session: AsyncClientSession
    jobs: JobRepository
    requests: RequestRepository
    admissions: AdmissionRepository
    idempotency: IdempotencyRepository
    compaction: CompactionStore
    relay: OutboxRelay
    entries: list[Document] = field(default_factory=list)

    def raise_event(self, topic: Topic, key: str, event: Envelope[Any]) -> None:
        """``event`` goes out once the transaction commits, in its own outbox entry."""
        self.raise_messages([outbox_message(topic, key, event)])

    def raise_messages(self, messages: list[Document]) -> None:
        """``outbox_message``s that go out once the transaction commits, in order, in as few
        outbox entries as fit (an entry's events are inserted and deleted together)."""
        chunks: list[list[Document]] = [[]]
        size = 0
        for message in messages:
            message_size = len(bson.encode(message))
            if chunks[-1] and size + message_size > ENTRY_BYTES:
                chunks.append([])
                size = 0
            chunks[-1].append(message)
            size += message_size
        self.entries += [self.relay.held_many(chunk) for chunk in chunks if chunk]


class QueuedJobs(Protocol):
    """The jobs as queuing and admitting one sees them."""

    async def add(self, document: Document, session: AsyncClientSession | None = None) -> None: ...

    async def count_active(self, tenant: str, owner: str, session: AsyncClientSession) -> int: ...

    async def active_for_targets(
        self, tenant: str, targets: list[str], session: AsyncClientSession
    ) -> ActiveJob | None: ...


class Admissions(Protocol):
    async def serialize(
        self, tenant: str, user: str, targets: list[str], session: AsyncClientSession
    ) -> None: ...


class Queueing(Protocol):
    """A ``Transaction`` as queuing a job sees it: what a fake stands in for in the service
    layer's tests."""

    @property
    def session(self) -> AsyncClientSession: ...

    @property
    def jobs(self) -> QueuedJobs: ...

    @property
    def admissions(self) -> Admissions: ...

    def raise_messages(self, messages: list[Document]) -> None: ...


class UnitOfWork:
    """Opens the transactions of the use cases of one process."""

    def __init__(
        self,
        mongo: AsyncMongoClient[Document],
        relay: OutboxRelay,
        jobs: JobRepository,
        requests: RequestRepository,
        admissions: AdmissionRepository,
        idempotency: IdempotencyRepository,
        compaction: CompactionStore,
    ) -> None:
        self._mongo = mongo
        self._relay = relay
        self._jobs = jobs
        self._requests = requests
        self._admissions = admissions
        self._idempotency = idempotency
        self.compaction = compaction  # also read outside a transaction (what to merge)

    @classmethod
    def of(cls, runtime: Runtime) -> UnitOfWork:
        """The unit of work over the process's own client, relay and repositories."""
        repositories = (runtime.jobs, runtime.requests, runtime.admissions, runtime.idempotency)
        return cls(runtime.mongo, runtime.relay, *repositories, runtime.compaction)

    async def run(self, work: Callable[[Transaction], Awaitable[T]], *, retry: bool = True) -> T:
        """``work`` in one transaction, and its events after it committed; returns what it returns.

        ``retry`` False: a conflict raises (see ``client.is_conflict``) instead of running the
        work again, for callers that have other work to do than wait on a busy document.
        """
        committed: list[Document] = []

        async def attempt(session: AsyncClientSession) -> T:
            committed.clear()  # an attempt that was rolled back raised nothing
            transaction = Transaction(
                session,
                self._jobs,
                self._requests,
                self._admissions,
                self._idempotency,
                self.compaction,
                self._relay,
            )
            result = await work(transaction)
            if transaction.entries and session.in_transaction:  # the work may have aborted it
                await _insert(self._relay, transaction.entries, session)
                committed[:] = transaction.entries
            return result

        result = await (in_transaction if retry else in_transaction_once)(self._mongo, attempt)
        self._relay.publish_soon(committed)
        return result


async def _insert(relay: OutboxRelay, entries: list[Document], session: AsyncClientSession) -> None:
    """One entry alone raises DuplicateKeyError when queued before, as the callers expect."""
    if len(entries) == 1:
        await relay.outbox.add(entries[0], session=session)
    else:
        await relay.outbox.add_many(entries, session)


@dataclass
class BlockingTransaction:
    """One attempt of a ``BlockingUnitOfWork``: its session and database, and the outbox entries
    (``OutboxRelay.held``) raised in it."""

    session: ClientSession
    db: Database[Document]
    entries: list[Document] = field(default_factory=list)

    def raise_entries(self, entries: list[Document]) -> None:
        self.entries += entries


class BlockingUnitOfWork:
    """``UnitOfWork`` for a thread with a blocking client: the entries a committed attempt raised
    go to the outbox in it, merged into one (one insert, and later one delete, for all of them)."""

    def __init__(self, client: MongoClient[Document], database: str) -> None:
        self._client = client
        self._database = database

    def run(self, work: Callable[[BlockingTransaction], None]) -> list[Document]:
        """``work`` in one transaction, retried on transient errors; returns the outbox entry it
        committed (none or one), for the caller to hand to its relay on the event loop."""
        committed: list[Document] = []

        def attempt(session: ClientSession) -> None:
            committed.clear()  # an attempt that was rolled back raised nothing
            transaction = BlockingTransaction(session, self._client[self._database])
            work(transaction)
            if transaction.entries:
                entry = merged_entry(transaction.entries)
                transaction.db[OUTBOX].insert_one(entry, session=session)
                committed.append(entry)

        with self._client.start_session() as session:
            session.with_transaction(attempt)
        return committed

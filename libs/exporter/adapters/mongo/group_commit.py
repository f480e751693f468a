"""Group commit: inserts that arrive together are written in one transaction.

With a store that pays dearly per transaction, hundreds of concurrent API calls each opening
their own would spend their time waiting in line. Instead each caller hands over its documents
and waits; a single writer takes everything queued since its last commit and writes it in one
transaction, one ``insert_many`` per collection. Batches form by themselves under load (while a
commit runs, the next batch queues) and stay single at low load, so no latency is added.

The writer is a thread with its own blocking client, not a task on the caller's event loop: a
transaction is several round trips, and on a busy loop each reply waited for the loop to work
through every HTTP request queued before it (a commit took about 40 ms). In its own thread a
reply is read as soon as the thread gets the interpreter back, which ``GIL_SWITCH_SECONDS``
bounds. One writer, because the store serializes transactions anyway: concurrent ones only
slowed each other down (measured: 4 writers committed a third less than 1).

Each caller still gets its own outcome: when a batch fails, its members are retried one by one,
so only the faulty one (say, a duplicate idempotency key) sees the error.

A caller may bound what it inserts (``Cap``: at most so many documents matching a query, say a
user's active requests). The writer checks a batch's caps in its transaction against counters
kept in documents of ``admissions`` (several caps may share one, say a tenant's and each of its
users'): one read of the batch's counter documents and one write of each, however many members
share them; the store pays per document written, not per field. A counter is an upper bound
(it counts inserts; what later stops matching is not subtracted), so only a cap that seems full
is recounted, with a count bounded by the limit. Concurrent writers (other API processes) write
the same counters, so the store aborts one and its retry sees the other's inserts: the cap
holds. Members past a cap get ``CapReached``; the others commit.

Outbox entries are the exception to "one document each": a batch's entries are merged into one
(one insert, and later one delete, for all its events), and the writer, not the caller, hands
the committed entry to the relay (``publish``, called on the event loop), so that it goes out once.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo import MongoClient, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.database import Database

from exporter.adapters.mongo.client import ADMISSIONS, OUTBOX, Document
from exporter.adapters.mongo.outbox import merged_entry
from exporter.contracts.base import utcnow

Inserts = list[tuple[str, Document]]  # (collection, document), in order
# How long the event loop's thread may keep the interpreter while the writer waits for it, once
# per reply it reads (Python's default is 5 ms; at that, a commit's replies waited 20 ms or more).
GIL_SWITCH_SECONDS = 0.001


@dataclass(frozen=True, slots=True)
class Cap:
    """At most ``limit`` documents of ``collection`` match ``query``; the count is kept at
    ``field`` (a dotted path) of the counter document ``counter``; ``message`` is what a caller
    past the limit is told. Caps that share a counter document cost one write between them."""

    counter: str
    field: str
    collection: str
    query: Document
    limit: int
    message: str

    @property
    def key(self) -> tuple[str, str]:
        return self.counter, self.field


class CapReached(Exception):
    """An insert that a ``Cap`` refused; nothing of it was written."""


@dataclass
class _Pending:
    inserts: Inserts
    done: asyncio.Future[None]
    caps: list[Cap]


def _within_caps(db: Database[Document], batch: list[_Pending], session: ClientSession) -> dict[int, Cap]:
    """The members of ``batch`` (by index) that a cap refuses; counts the others, in ``session``."""
    if not any(pending.caps for pending in batch):
        return {}
    counters = db[ADMISSIONS]
    ids = sorted({cap.counter for pending in batch for cap in pending.caps})
    stored = {c["_id"]: c for c in counters.find({"_id": {"$in": ids}}, session=session)}
    counts: dict[tuple[str, str], int] = {}
    added: dict[tuple[str, str], int] = defaultdict(int)  # by this batch, not in the snapshot yet
    recounted: set[tuple[str, str]] = set()

    def full(cap: Cap) -> bool:
        if cap.key not in counts:
            counts[cap.key] = _at(stored.get(cap.counter, {}), cap.field, cap.limit)  # none yet: count
        if counts[cap.key] >= cap.limit and cap.key not in recounted:
            recounted.add(cap.key)
            recount = db[cap.collection].count_documents(cap.query, limit=cap.limit, session=session)
            counts[cap.key] = recount + added[cap.key]
        return counts[cap.key] >= cap.limit

    refused: dict[int, Cap] = {}
    for index, pending in enumerate(batch):
        if (over := next((cap for cap in pending.caps if full(cap)), None)) is not None:
            refused[index] = over
            continue
        for cap in pending.caps:
            counts[cap.key] += 1
            added[cap.key] += 1
    fields: dict[str, Document] = defaultdict(lambda: {"countedAt": utcnow()})
    for (counter, field), count in counts.items():
        fields[counter][field] = count
    counters.bulk_write(
        [UpdateOne({"_id": counter}, {"$set": values}, upsert=True) for counter, values in fields.items()],
        session=session,
    )
    return refused


def _at(document: Document, path: str, default: int) -> int:
    value: Any = document
    for name in path.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value if isinstance(value, int) else default


class GroupCommit:
    def __init__(
        self,
        connect: Callable[[], MongoClient[Document]],
        database: str,
        publish: Callable[[list[Document]], None],
        max_batch: int = 500,
    ) -> None:
        self._connect = connect
        self._database = database
        self._publish = publish
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def insert(self, inserts: Inserts, caps: list[Cap] | None = None) -> None:
        """Returns once ``inserts`` are committed, all of them or none; raises what the store
        raised, or ``CapReached`` (nothing written) when they would pass one of ``caps``.

        Outbox entries among them are handed to ``publish`` once committed."""
        loop = asyncio.get_running_loop()
        if self._writer is None:
            self._loop = loop
            sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_SECONDS))
            self._writer = threading.Thread(
                target=self._write_forever, args=(self._connect(),), name="group-commit", daemon=True
            )
            self._writer.start()
        pending = _Pending(inserts, loop.create_future(), caps or [])
        self._queue.put(pending)
        await pending.done

    async def close(self) -> None:
        """Lets the writer finish what is queued, then stops it."""
        if self._writer is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._writer.join)
            self._writer = None

    def _write_forever(self, client: MongoClient[Document]) -> None:
        try:
            while (first := self._queue.get()) is not None:
                batch = [first]
                while len(batch) < self._max_batch and not self._queue.empty():
                    if (pending := self._queue.get_nowait()) is None:
                        self._queue.put(None)  # stop after this batch
                        break
                    batch.append(pending)
                self._write(client, batch)
        finally:
            client.close()

    def _write(self, client: MongoClient[Document], batch: list[_Pending]) -> None:
        try:
            committed, refused = self._commit(client, batch)
        except Exception:
            # Isolate the faulty member: the others commit, it alone gets the error.
            outcomes: list[tuple[_Pending, Exception | None]] = []
            entries: list[Document] = []
            for pending in batch:
                try:
                    alone, refused = self._commit(client, [pending], one_by_one=True)
                except Exception as error:
                    outcomes.append((pending, error))
                else:
                    entries += alone
                    outcomes.append((pending, refused.get(0)))
            self._hand_back(entries, outcomes)
        else:
            self._hand_back(committed, [(pending, refused.get(index)) for index, pending in enumerate(batch)])

    def _commit(
        self, client: MongoClient[Document], batch: list[_Pending], one_by_one: bool = False
    ) -> tuple[list[Document], dict[int, Exception]]:
        """Writes ``batch`` in one transaction, but for the members past a cap; returns the outbox
        entries it committed and those members' errors (by index)."""
        db = client[self._database]
        committed: list[Document] = []
        refused: dict[int, Exception] = {}

        def write(session: ClientSession) -> None:
            over = _within_caps(db, batch, session)
            by_collection: dict[str, list[Document]] = defaultdict(list)
            for index, pending in enumerate(batch):
                if index not in over:
                    for collection, document in pending.inserts:
                        by_collection[collection].append(document)
            if len(entries := by_collection.get(OUTBOX, [])) > 1:
                by_collection[OUTBOX] = [merged_entry(entries)]
            for collection, documents in by_collection.items():
                if one_by_one:  # single inserts, so a duplicate surfaces as DuplicateKeyError
                    for document in documents:
                        db[collection].insert_one(document, session=session)
                else:
                    db[collection].insert_many(documents, session=session)
            # Assigned, not appended: the store may run this again.
            committed[:] = by_collection.get(OUTBOX, [])
            refused.clear()
            refused.update({index: CapReached(cap.message) for index, cap in over.items()})

        with client.start_session() as session:
            session.with_transaction(write)
        return committed, refused

    def _hand_back(self, entries: list[Document], outcomes: list[tuple[_Pending, Exception | None]]) -> None:
        """On the event loop: the committed entries to the relay, each caller its outcome."""

        def settle() -> None:
            if entries:
                self._publish(entries)
            for pending, error in outcomes:
                _resolve(pending, error)

        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is left to tell
            self._loop.call_soon_threadsafe(settle)


def _resolve(pending: _Pending, error: Exception | None = None) -> None:
    """Its caller may have gone (a client hung up): the commit stands, nobody is told."""
    if pending.done.done():
        return
    if error is None:
        pending.done.set_result(None)
    else:
        pending.done.set_exception(error)

"""Group commit: the request-api's creates that arrive together commit in one transaction.

With a store that pays dearly per transaction, hundreds of concurrent API calls each opening
their own would spend their time waiting in line. Instead each caller hands over its documents
and events and waits; a single writer takes everything queued since its last commit and writes
it in one unit of work (``BlockingUnitOfWork``), one ``insert_many`` per collection and one
outbox entry for all the events. Batches form by themselves under load (while a commit runs, the
next batch queues) and stay single at low load, so no latency is added.

The writer is a thread with its own blocking client, not a task on the caller's event loop: a
transaction is several round trips, and on a busy loop each reply waited for the loop to work
through every HTTP request queued before it (a commit took about 40 ms). In its own thread a
reply is read as soon as the thread gets the interpreter back, which ``GIL_SWITCH_SECONDS``
bounds. One writer, because the store serializes transactions anyway: concurrent ones only
slowed each other down (measured: 4 writers committed a third less than 1).

Each caller still gets its own outcome: when a batch fails, its members are retried one by one,
so only the faulty one (say, a duplicate idempotency key) sees the error. A caller may bound what
it inserts (``Cap``, see ``adapters/mongo/caps.py``): members past a cap get ``CapReached``; the
others commit. The writer, not the caller, hands the committed entry to the relay (``publish``,
called on the event loop), so that it goes out once.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from pymongo import MongoClient

from exporter.adapters.mongo.caps import Cap, CapReached, within_caps
from exporter.adapters.mongo.client import Document
from exporter.service_layer.unit_of_work import BlockingTransaction, BlockingUnitOfWork

Inserts = list[tuple[str, Document]]  # (collection, document), in order
# How long the event loop's thread may keep the interpreter while the writer waits for it, once
# per reply it reads (Python's default is 5 ms; at that, a commit's replies waited 20 ms or more).
GIL_SWITCH_SECONDS = 0.001


@dataclass
class _Pending:
    inserts: Inserts
    done: asyncio.Future[None]
    caps: list[Cap]
    events: list[Document] = field(default_factory=list)  # outbox entries (``OutboxRelay.held``)


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

    async def insert(
        self, inserts: Inserts, caps: list[Cap] | None = None, events: list[Document] | None = None
    ) -> None:
        """Returns once ``inserts`` and ``events`` (outbox entries) are committed, all of them or
        none; raises what the store raised, or ``CapReached`` (nothing written) when they would
        pass one of ``caps``. The events are handed to ``publish`` once committed."""
        loop = asyncio.get_running_loop()
        if self._writer is None:
            self._loop = loop
            sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_SECONDS))
            self._writer = threading.Thread(
                target=self._write_forever, args=(self._connect(),), name="group-commit", daemon=True
            )
            self._writer.start()
        pending = _Pending(inserts, loop.create_future(), caps or [], events or [])
        self._queue.put(pending)
        await pending.done

    async def close(self) -> None:
        """Lets the writer finish what is queued, then stops it."""
        if self._writer is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._writer.join)
            self._writer = None

    def _write_forever(self, client: MongoClient[Document]) -> None:
        unit_of_work = BlockingUnitOfWork(client, self._database)
        try:
            while (first := self._queue.get()) is not None:
                batch = [first]
                while len(batch) < self._max_batch and not self._queue.empty():
                    if (pending := self._queue.get_nowait()) is None:
                        self._queue.put(None)  # stop after this batch
                        break
                    batch.append(pending)
                self._write(unit_of_work, batch)
        finally:
            client.close()

    def _write(self, unit_of_work: BlockingUnitOfWork, batch: list[_Pending]) -> None:
        try:
            committed, refused = self._commit(unit_of_work, batch)
        except Exception:
            # Isolate the faulty member: the others commit, it alone gets the error.
            outcomes: list[tuple[_Pending, Exception | None]] = []
            entries: list[Document] = []
            for pending in batch:
                try:
                    alone, refused = self._commit(unit_of_work, [pending], one_by_one=True)
                except Exception as error:
                    outcomes.append((pending, error))
                else:
                    entries += alone
                    outcomes.append((pending, refused.get(0)))
            self._hand_back(entries, outcomes)
        else:
            self._hand_back(committed, [(pending, refused.get(index)) for index, pending in enumerate(batch)])

    @staticmethod
    def _commit(
        unit_of_work: BlockingUnitOfWork, batch: list[_Pending], one_by_one: bool = False
    ) -> tuple[list[Document], dict[int, Exception]]:
        """Writes ``batch`` in one transaction, but for the members past a cap; returns the outbox
        entries it committed and those members' errors (by index)."""
        refused: dict[int, Exception] = {}

        def write(transaction: BlockingTransaction) -> None:
            db, session = transaction.db, transaction.session
            over = within_caps(db, [pending.caps for pending in batch], session)
            by_collection: dict[str, list[Document]] = defaultdict(list)
            for index, pending in enumerate(batch):
                if index not in over:
                    for collection, document in pending.inserts:
                        by_collection[collection].append(document)
                    transaction.raise_entries(pending.events)
            for collection, documents in by_collection.items():
                if one_by_one:  # single inserts, so a duplicate surfaces as DuplicateKeyError
                    for document in documents:
                        db[collection].insert_one(document, session=session)
                else:
                    db[collection].insert_many(documents, session=session)
            # Assigned, not appended: the store may run this again.
            refused.clear()
            refused.update({index: CapReached(cap.message) for index, cap in over.items()})

        return unit_of_work.run(write), refused

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

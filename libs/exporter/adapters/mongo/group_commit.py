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

from pymongo import MongoClient
from pymongo.client_session import ClientSession

from exporter.adapters.mongo.client import OUTBOX, Document
from exporter.adapters.mongo.outbox import merged_entry

Inserts = list[tuple[str, Document]]  # (collection, document), in order
# How long the event loop's thread may keep the interpreter while the writer waits for it, once
# per reply it reads (Python's default is 5 ms; at that, a commit's replies waited 20 ms or more).
GIL_SWITCH_SECONDS = 0.001


@dataclass
class _Pending:
    inserts: Inserts
    done: asyncio.Future[None]


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

    async def insert(self, inserts: Inserts) -> None:
        """Returns once ``inserts`` are committed, all of them or none; raises what the store raised.

        Outbox entries among them are handed to ``publish`` once committed."""
        loop = asyncio.get_running_loop()
        if self._writer is None:
            self._loop = loop
            sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_SECONDS))
            self._writer = threading.Thread(
                target=self._write_forever, args=(self._connect(),), name="group-commit", daemon=True
            )
            self._writer.start()
        pending = _Pending(inserts, loop.create_future())
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
            committed = self._commit(client, [pending.inserts for pending in batch])
        except Exception:
            # Isolate the faulty member: the others commit, it alone gets the error.
            outcomes: list[tuple[_Pending, Exception | None]] = []
            entries: list[Document] = []
            for pending in batch:
                try:
                    entries += self._commit(client, [pending.inserts], one_by_one=True)
                except Exception as error:
                    outcomes.append((pending, error))
                else:
                    outcomes.append((pending, None))
            self._hand_back(entries, outcomes)
        else:
            self._hand_back(committed, [(pending, None) for pending in batch])

    def _commit(
        self, client: MongoClient[Document], groups: list[Inserts], one_by_one: bool = False
    ) -> list[Document]:
        """Writes ``groups`` in one transaction; returns the outbox entries it committed."""
        by_collection: dict[str, list[Document]] = defaultdict(list)
        for inserts in groups:
            for collection, document in inserts:
                by_collection[collection].append(document)
        if len(entries := by_collection.get(OUTBOX, [])) > 1:
            by_collection[OUTBOX] = [merged_entry(entries)]
        db = client[self._database]

        def write(session: ClientSession) -> None:
            for collection, documents in by_collection.items():
                if one_by_one:  # single inserts, so a duplicate surfaces as DuplicateKeyError
                    for document in documents:
                        db[collection].insert_one(document, session=session)
                else:
                    db[collection].insert_many(documents, session=session)

        with client.start_session() as session:
            session.with_transaction(write)
        return by_collection.get(OUTBOX, [])

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

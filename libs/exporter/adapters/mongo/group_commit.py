"""Group commit: inserts that arrive together are written in one transaction.

With a store that pays dearly per transaction, hundreds of concurrent API calls each opening
their own would spend their time waiting in line. Instead each caller hands over its documents
and waits; a single writer takes everything queued since its last commit and writes it in one
transaction, one ``insert_many`` per collection. Batches form by themselves under load (while a
commit runs, the next batch queues) and stay single at low load, so no latency is added.

Each caller still gets its own outcome: when a batch fails, its members are retried one by one,
so only the faulty one (say, a duplicate idempotency key) sees the error.

Outbox entries are the exception to "one document each": a batch's entries are merged into one
(one insert, and later one delete, for all its events), and the writer, not the caller, hands
the committed entry to the relay (``publish``), so that it goes out once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import OUTBOX, Document, in_transaction
from exporter.adapters.mongo.outbox import merged_entry

Inserts = list[tuple[str, Document]]  # (collection, document), in order


@dataclass
class _Pending:
    inserts: Inserts
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommit:
    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: AsyncDatabase[Document],
        publish: Callable[[list[Document]], None],
        max_batch: int = 500,
        writers: int = 4,
    ) -> None:
        self._client = client
        self._db = db
        self._publish = publish
        self._max_batch = max_batch
        self._writer_count = writers
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writers: list[asyncio.Task[None]] = []

    async def insert(self, inserts: Inserts) -> None:
        """Returns once ``inserts`` are committed, all of them or none; raises what the store raised.

        Outbox entries among them are handed to ``publish`` once committed."""
        if not self._writers:
            self._writers = [asyncio.create_task(self._write_forever()) for _ in range(self._writer_count)]
        pending = _Pending(inserts)
        self._queue.put_nowait(pending)
        await pending.done

    async def close(self) -> None:
        for writer in self._writers:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        self._writers = []

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit([pending.inserts for pending in batch])
            except Exception:
                # Isolate the faulty member: the others commit, it alone gets the error.
                for pending in batch:
                    await self._settle(pending)
            else:
                for pending in batch:
                    _resolve(pending)

    async def _settle(self, pending: _Pending) -> None:
        try:
            await self._commit([pending.inserts], one_by_one=True)
        except Exception as error:
            _resolve(pending, error)
        else:
            _resolve(pending)

    async def _commit(self, groups: list[Inserts], one_by_one: bool = False) -> None:
        by_collection: dict[str, list[Document]] = defaultdict(list)
        for inserts in groups:
            for collection, document in inserts:
                by_collection[collection].append(document)
        if len(entries := by_collection.get(OUTBOX, [])) > 1:
            by_collection[OUTBOX] = [merged_entry(entries)]

        async def write(session: AsyncClientSession) -> None:
            for collection, documents in by_collection.items():
                if one_by_one:  # single inserts, so a duplicate surfaces as DuplicateKeyError
                    for document in documents:
                        await self._db[collection].insert_one(document, session=session)
                else:
                    await self._db[collection].insert_many(documents, session=session)

        await in_transaction(self._client, write)
        if OUTBOX in by_collection:
            self._publish(by_collection[OUTBOX])


def _resolve(pending: _Pending, error: Exception | None = None) -> None:
    """Its caller may have gone (a client hung up): the commit stands, nobody is told."""
    if pending.done.done():
        return
    if error is None:
        pending.done.set_result(None)
    else:
        pending.done.set_exception(error)

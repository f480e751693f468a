"""The MongoDB client and the collections' indexes.

Plain MongoDB: the same code runs against the embedded SecantusDB and MongoDB 8.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, MongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from exporter.settings import MongoSettings, Settings

Document = dict[str, Any]
T = TypeVar("T")

REQUESTS = "requests"
JOBS = "jobs"
OUTBOX = "outbox"
MEASUREMENTS = "measurements"
THINGS = "things"
ENTITIES = "entities"
IDEMPOTENCY = "idempotency"
GRANTS = "grants"
ADMISSIONS = "admissions"
NUMBERS = "numbers"
RETIRED_INDEX = "retired"


def connect(settings: Settings) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(settings.mongo.uri.get_secret_value(), **client_options(settings.mongo))


def connect_blocking(settings: Settings) -> MongoClient[Document]:
    """A blocking client, for work done in a thread of its own (see group_commit)."""
    return MongoClient(settings.mongo.uri.get_secret_value(), **client_options(settings.mongo))


def client_options(settings: MongoSettings) -> dict[str, Any]:
    """Every client's options: a store that accepts and never answers fails a call in bounded
    time (PyMongo waits for ever by default), and the caller's loop goes on."""
    connect_ms = round(settings.connect_timeout_seconds * 1000)
    return {
        "tz_aware": True,
        "uuidRepresentation": "standard",
        "connectTimeoutMS": connect_ms,
        "serverSelectionTimeoutMS": connect_ms,
        "socketTimeoutMS": round(settings.operation_timeout_seconds * 1000),
    }


def database(client: AsyncMongoClient[Document], settings: Settings) -> AsyncDatabase[Document]:
    return client[settings.mongo.database]


INDEXES: dict[str, list[IndexModel]] = {
    REQUESTS: [
        IndexModel([("tenant", ASCENDING), ("owner", ASCENDING), ("createdAt", DESCENDING)]),
        # The scheduler's read: one shard's due requests in time order.
        IndexModel(
            [("schedule.shard", ASCENDING), ("schedule.nextRunAt", ASCENDING)],
            name="due_runs_by_shard",
            sparse=True,
        ),
    ],
    JOBS: [
        IndexModel([("requestId", ASCENDING), ("scheduledAt", DESCENDING)]),
        IndexModel([("tenant", ASCENDING), ("owner", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("tenant", ASCENDING), ("targets", ASCENDING), ("status", ASCENDING)]),
        # GET /jobs and seed 004's history: a tenant's jobs by scheduled time, whole or filtered.
        IndexModel([("tenant", ASCENDING), ("scheduledAt", DESCENDING)]),
        IndexModel([("tenant", ASCENDING), ("owner", ASCENDING), ("scheduledAt", DESCENDING)]),
        IndexModel([("tenant", ASCENDING), ("createdBy", ASCENDING), ("scheduledAt", DESCENDING)]),
        IndexModel([("tenant", ASCENDING), ("status", ASCENDING), ("scheduledAt", DESCENDING)]),
    ],
    # Seed 004's numeric identities (see ``numbers``): an object by its number.
    NUMBERS: [IndexModel([("kind", ASCENDING), ("tenant", ASCENDING), ("number", ASCENDING)], unique=True)],
    IDEMPOTENCY: [IndexModel([("createdAt", ASCENDING)], expireAfterSeconds=24 * 3600)],
    GRANTS: [IndexModel([("tenant", ASCENDING)])],
    # Admission documents only serialize concurrent admissions; an idle one may go (and comes
    # back with the next admission of its user or target).
    ADMISSIONS: [IndexModel([("at", ASCENDING)], expireAfterSeconds=3600)],
    # No index on the outbox: it holds only events not yet published, a handful at any time, and
    # every index would cost each insert and delete on the API's hot path.
    # Segments (see ``segments``): a series' segments by time, and by arrival for recurring runs.
    MEASUREMENTS: [
        IndexModel(
            [("tenant", ASCENDING), ("publisher", ASCENDING), ("name", ASCENDING), ("from", ASCENDING)]
        ),
        IndexModel(
            [("tenant", ASCENDING), ("publisher", ASCENDING), ("name", ASCENDING), ("arrived", ASCENDING)]
        ),
        # Compaction (queries name exactly an index's fields): live (``retiredAt`` null) small
        # segments of a series; segments of all series by arrival; retired ones by when, sparse, so
        # the sweep does not walk the live ones.
        IndexModel(
            [
                ("tenant", ASCENDING),
                ("publisher", ASCENDING),
                ("name", ASCENDING),
                ("retiredAt", ASCENDING),
                ("count", ASCENDING),
            ],
            name="small_by_series",
        ),
        IndexModel([("lastArrived", ASCENDING)], name="by_last_arrival"),
        IndexModel([("retiredAt", ASCENDING)], name=RETIRED_INDEX, sparse=True),
        # The ingestor's look for what a replayed flush stored already (ingested segments only).
        IndexModel([("source.partition", ASCENDING), ("source.last", ASCENDING)]),
    ],
    # Export filters by customer, location, product model or thing definition (seed 001); single
    # things are read by ``_id``.
    THINGS: [
        IndexModel([("tenant", ASCENDING), ("customerId", ASCENDING)]),
        IndexModel([("tenant", ASCENDING), ("locationId", ASCENDING)]),
        IndexModel([("tenant", ASCENDING), ("productModelId", ASCENDING), ("productModelPartId", ASCENDING)]),
        IndexModel([("tenant", ASCENDING), ("thingDefinition.id", ASCENDING)]),
    ],
    # Entity exports read every entity of one type (seed 003).
    ENTITIES: [IndexModel([("tenant", ASCENDING), ("entityType", ASCENDING), ("id", ASCENDING)])],
}


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    """Idempotent: every service calls it at start, whichever starts first."""
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes(indexes)


async def multi_document_write(
    collection: AsyncCollection[Document], write: Callable[[AsyncClientSession], Awaitable[T]]
) -> T:
    """A write that may touch many documents, run as a transaction.

    MongoDB would not need one. The embedded MongoDB-wire server does: there, a plain
    multi-document write that meets a transaction's uncommitted change keeps retrying while it
    holds the collection, and the transaction waits for the collection: a deadlock, seen with
    two schedulers. Inside a transaction the conflict aborts and is retried instead.
    """
    return await in_transaction(collection.database.client, write)


async def in_transaction(
    client: AsyncMongoClient[Document], work: Callable[[AsyncClientSession], Awaitable[T]]
) -> T:
    """Runs ``work`` in one multi-document transaction, retried on transient errors."""
    async with client.start_session() as session:
        return await session.with_transaction(work)


async def in_transaction_once(
    client: AsyncMongoClient[Document], work: Callable[[AsyncClientSession], Awaitable[T]]
) -> T:
    """``in_transaction`` without the retries: a conflict raises (see ``is_conflict``), for
    callers that have other work to do meanwhile rather than wait on a busy document."""
    async with client.start_session() as session, await session.start_transaction():
        return await work(session)


def is_conflict(error: PyMongoError) -> bool:
    """A transaction lost to another writer (or to one that died holding the documents)."""
    return error.has_error_label("TransientTransactionError")

"""Every MongoDB operation the services rely on, proven against the local SecantusDB server.

The services must run unchanged on MongoDB 8, so these tests use plain PyMongo (async API) and
assert what MongoDB guarantees; a gap in the local server shows up here, not in a service test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, InsertOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from exporter.settings import Settings

Document = dict[str, Any]

# SecantusDB sweeps TTL indexes every 60 s like mongod's TTL monitor (its ttl_sweep_seconds setting
# is not passed through by secantusd-py 0.7.0b3), so expiry takes up to a minute.
TTL_MONITOR_BOUND_SECONDS = 90


@pytest.fixture(scope="module")
async def database(settings: Settings) -> AsyncIterator[AsyncDatabase[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo.uri.get_secret_value())
    database = client[f"test_mongo_{uuid.uuid4().hex[:8]}"]
    yield database
    await client.drop_database(database.name)
    await client.close()


@pytest.fixture
def collection(
    database: AsyncDatabase[Document], request: pytest.FixtureRequest
) -> AsyncCollection[Document]:
    """A fresh collection per test, named after it."""
    return database[request.node.name.removeprefix("test_")]


async def test_find_one_and_update_upserts_and_returns_the_new_document(
    collection: AsyncCollection[Document],
) -> None:
    async def bump() -> Document | None:
        return await collection.find_one_and_update(
            {"_id": "quota:tenant-a"},
            {"$inc": {"used": 1}, "$setOnInsert": {"limit": 5}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )

    assert await bump() == {"_id": "quota:tenant-a", "used": 1, "limit": 5}
    assert await bump() == {"_id": "quota:tenant-a", "used": 2, "limit": 5}
    assert await collection.count_documents({}) == 1


async def test_concurrent_conditional_find_one_and_update_has_exactly_one_winner(
    collection: AsyncCollection[Document],
) -> None:
    await collection.insert_one({"_id": "job-1", "status": "notProcessed"})

    async def claim(worker: int) -> Document | None:
        return await collection.find_one_and_update(
            {"_id": "job-1", "status": "notProcessed"},
            {"$set": {"status": "inProgress", "worker": worker}},
            return_document=ReturnDocument.AFTER,
        )

    results = await asyncio.gather(*(claim(worker) for worker in range(50)))

    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    assert await collection.find_one({"_id": "job-1"}) == winners[0]


async def test_find_one_and_update_with_sort_claims_the_oldest_match(
    collection: AsyncCollection[Document],
) -> None:
    await collection.insert_many(
        [{"_id": i, "status": "notProcessed", "due": 100 - i} for i in range(5)]
        + [{"_id": 9, "status": "done", "due": 0}]
    )

    claimed = await collection.find_one_and_update(
        {"status": "notProcessed"},
        {"$set": {"status": "inProgress"}},
        sort=[("due", ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )

    assert claimed == {"_id": 4, "status": "inProgress", "due": 96}


async def test_guarded_update_one_reports_whether_the_transition_happened(
    collection: AsyncCollection[Document],
) -> None:
    await collection.insert_one({"_id": "job-2", "status": "inProgress"})

    async def finish() -> int:
        result = await collection.update_one(
            {"_id": "job-2", "status": "inProgress"}, {"$set": {"status": "done"}}
        )
        return result.modified_count

    assert sorted(await asyncio.gather(*(finish() for _ in range(20)))) == [0] * 19 + [1]
    assert await finish() == 0
    assert await collection.find_one({"_id": "job-2"}) == {"_id": "job-2", "status": "done"}


async def test_update_many_stamps_a_lease_on_due_documents_then_find_by_token(
    collection: AsyncCollection[Document],
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await collection.insert_many(
        [{"_id": f"due-{i}", "due": now - timedelta(minutes=i)} for i in range(5)]
        + [{"_id": f"later-{i}", "due": now + timedelta(minutes=1 + i)} for i in range(3)]
        + [{"_id": "leased", "due": now, "lease": "other", "lease_until": now + timedelta(seconds=30)}]
        + [{"_id": "lease-expired", "due": now, "lease": "old", "lease_until": now - timedelta(seconds=1)}]
    )

    async def claim(token: str) -> list[str]:
        claimable = {
            "due": {"$lte": now},
            "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}],
        }
        lease = {"$set": {"lease": token, "lease_until": now + timedelta(seconds=30)}}
        stamped = await collection.update_many(claimable, lease)
        claimed = [document["_id"] async for document in collection.find({"lease": token}).sort("_id")]
        assert stamped.modified_count == len(claimed)
        return claimed

    first, second = await asyncio.gather(claim("token-a"), claim("token-b"))

    expected = sorted([f"due-{i}" for i in range(5)] + ["lease-expired"])
    assert sorted(first + second) == expected
    assert not set(first) & set(second)
    assert await collection.count_documents({"lease": "other"}) == 1


async def test_unique_indexes_reject_duplicates(collection: AsyncCollection[Document]) -> None:
    await collection.create_index([("tenant", ASCENDING), ("name", ASCENDING)], unique=True)
    # At most one active export per entity type: unique only among the documents it covers.
    await collection.create_index(
        [("tenant", ASCENDING), ("entity_type", ASCENDING)],
        unique=True,
        partialFilterExpression={"active": True},
        name="one_active_per_entity_type",
    )
    await collection.insert_one({"tenant": "a", "name": "daily", "entity_type": "thing", "active": True})

    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({"tenant": "a", "name": "daily"})
    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({"tenant": "a", "name": "other", "entity_type": "thing", "active": True})
    await collection.insert_one({"tenant": "b", "name": "daily", "entity_type": "thing", "active": True})
    await collection.insert_one({"tenant": "a", "name": "old", "entity_type": "thing", "active": False})

    assert await collection.count_documents({}) == 3


async def test_ttl_index_removes_expired_documents(collection: AsyncCollection[Document]) -> None:
    await collection.create_index("expires_at", expireAfterSeconds=0)
    now = datetime.now(UTC)
    await collection.insert_many(
        [
            {"_id": "expired", "expires_at": now - timedelta(seconds=1)},
            {"_id": "kept", "expires_at": now + timedelta(days=1)},
        ]
    )
    indexes = await collection.index_information()
    assert indexes["expires_at_1"]["expireAfterSeconds"] == 0

    for _ in range(TTL_MONITOR_BOUND_SECONDS * 2):
        if not await collection.count_documents({"_id": "expired"}):
            break
        await asyncio.sleep(0.5)

    assert [document["_id"] async for document in collection.find()] == ["kept"]


async def test_aggregation_match_group_sort(collection: AsyncCollection[Document]) -> None:
    await collection.insert_many(
        [
            {"tenant": "a", "thing": "t1", "value": 1.5},
            {"tenant": "a", "thing": "t1", "value": 2.5},
            {"tenant": "a", "thing": "t2", "value": 10.0},
            {"tenant": "a", "thing": "t3", "value": -1.0},
            {"tenant": "b", "thing": "t1", "value": 100.0},
        ]
    )

    pipeline: list[Document] = [
        {"$match": {"tenant": "a", "value": {"$gte": 0}}},
        {
            "$group": {
                "_id": "$thing",
                "total": {"$sum": "$value"},
                "count": {"$sum": 1},
                "max": {"$max": "$value"},
            }
        },
        {"$sort": {"total": DESCENDING}},
    ]
    rows = await (await collection.aggregate(pipeline)).to_list()

    assert rows == [
        {"_id": "t2", "total": 10.0, "count": 1, "max": 10.0},
        {"_id": "t1", "total": 4.0, "count": 2, "max": 2.5},
    ]


async def test_sorted_pages_with_skip_limit_and_count(collection: AsyncCollection[Document]) -> None:
    await collection.insert_many(
        [{"_id": i, "tenant": "a" if i % 5 else "b", "created": 1000 + i // 2} for i in range(30)]
    )
    page_filter = {"tenant": "a"}
    expected = sorted(
        (i for i in range(30) if i % 5), key=lambda i: (-(1000 + i // 2), i)
    )  # newest first, ties by id

    async def page(number: int, size: int = 10) -> list[int]:
        cursor = (
            collection.find(page_filter, {"_id": 1})
            .sort([("created", DESCENDING), ("_id", ASCENDING)])
            .skip(number * size)
            .limit(size)
        )
        return [document["_id"] async for document in cursor]

    assert await collection.count_documents(page_filter) == 24
    assert [await page(n) for n in range(3)] == [expected[:10], expected[10:20], expected[20:]]
    assert await page(3) == []


async def test_transaction_commits_all_or_nothing(
    database: AsyncDatabase[Document], collection: AsyncCollection[Document]
) -> None:
    outbox = database[f"{collection.name}_outbox"]
    await collection.insert_one({"_id": "seed"})  # collections exist before the transactions
    await outbox.insert_one({"_id": "seed"})

    async with database.client.start_session() as session, await session.start_transaction():
        await collection.insert_one({"_id": "committed"}, session=session)
        await outbox.insert_one({"_id": "committed-event"}, session=session)
        # Not visible outside the transaction before it commits.
        assert await collection.find_one({"_id": "committed"}) is None

    async def write_then_fail() -> None:
        async with database.client.start_session() as session, await session.start_transaction():
            await collection.insert_one({"_id": "aborted"}, session=session)
            await outbox.insert_one({"_id": "aborted-event"}, session=session)
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        await write_then_fail()

    assert {document["_id"] async for document in collection.find()} == {"seed", "committed"}
    assert {document["_id"] async for document in outbox.find()} == {"seed", "committed-event"}


async def test_unordered_bulk_write_keeps_everything_but_the_duplicate(
    collection: AsyncCollection[Document],
) -> None:
    await collection.insert_one({"_id": "existing", "n": 0})

    with pytest.raises(BulkWriteError) as raised:
        await collection.bulk_write(
            [
                InsertOne({"_id": "a"}),
                InsertOne({"_id": "existing"}),
                InsertOne({"_id": "b"}),
                UpdateOne({"_id": "existing"}, {"$inc": {"n": 1}}),
                UpdateOne({"_id": "new"}, {"$set": {"n": 5}}, upsert=True),
            ],
            ordered=False,
        )

    details = raised.value.details
    assert [(error["index"], error["code"]) for error in details["writeErrors"]] == [(1, 11000)]
    assert (details["nInserted"], details["nModified"], details["nUpserted"]) == (2, 1, 1)
    assert await collection.find().sort("_id").to_list() == [
        {"_id": "a"},
        {"_id": "b"},
        {"_id": "existing", "n": 1},
        {"_id": "new", "n": 5},
    ]


async def test_unordered_insert_many_stores_all_but_the_duplicates(
    collection: AsyncCollection[Document],
) -> None:
    await collection.create_index("key", unique=True)
    await collection.insert_one({"key": 3})

    with pytest.raises(BulkWriteError) as raised:
        await collection.insert_many([{"key": k} for k in (1, 2, 3, 4, 2, 5)], ordered=False)

    details = raised.value.details
    assert sorted(error["index"] for error in details["writeErrors"]) == [2, 4]
    assert details["nInserted"] == 4
    assert sorted(await collection.distinct("key")) == [1, 2, 3, 4, 5]

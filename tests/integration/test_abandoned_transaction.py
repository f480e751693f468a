"""A transaction whose client died holds up the others only until the embedded server reaps it,
``EXPORTER_LOCAL__MONGO_TRANSACTION_LIFETIME_SECONDS`` after its last statement (60 s, the
server's own default, made a killed scheduler replica's survivor fall minutes behind)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

from exporter.settings import Settings

# A process killed inside its transaction: no abort, no endSessions.
ABANDON = """
import os, sys
from pymongo import MongoClient
client = MongoClient(sys.argv[1])
session = client.start_session()
session.start_transaction()
client[sys.argv[2]]["held"].update_one({"_id": 1}, {"$set": {"by": "dead"}}, session=session)
print("held", flush=True)
os._exit(0)
"""
# Above the setting, below the server's default of 60 s.
MARGIN_SECONDS = 25.0


async def test_a_transaction_whose_client_died_is_reaped_after_the_lifetime(settings: Settings) -> None:
    uri = settings.mongo.uri.get_secret_value()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    held = client[f"abandoned_{uuid.uuid4().hex[:8]}"]["held"]
    await held.insert_one({"_id": 1})
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ABANDON, uri, held.database.name, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    assert await child.stdout.readline() == b"held\n"
    await child.wait()

    async def write(session: AsyncClientSession) -> None:
        await held.update_one({"_id": 1}, {"$set": {"by": "survivor"}}, session=session)

    try:
        async with asyncio.timeout(settings.local.mongo_transaction_lifetime_seconds + MARGIN_SECONDS):
            async with client.start_session() as session:
                await session.with_transaction(write)
        assert await held.find_one() == {"_id": 1, "by": "survivor"}
    finally:
        await client.close()

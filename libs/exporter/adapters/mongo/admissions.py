"""Admission documents: what makes "check the quota, then queue the job" one atomic step.

Counting a user's active jobs and then inserting one is a read followed by a write; two such
transactions side by side would both count N-1 and both insert (write skew: snapshot isolation
only stops two writes to the same document). So every admission also writes one document per
user and one per target it checks. Two admissions for the same user or target then write the
same document: the store aborts one of them, its retry runs on a snapshot that holds the other's
job, and it counts that job.
"""

from __future__ import annotations

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import ADMISSIONS, Document
from exporter.contracts.base import utcnow


class AdmissionRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[ADMISSIONS]

    async def serialize(
        self, tenant: str, user: str, targets: list[str], session: AsyncClientSession
    ) -> None:
        """Writes the user's and each target's admission document in ``session``'s transaction."""
        now = utcnow()
        ids = [f"user\x1f{tenant}\x1f{user}", *(f"target\x1f{tenant}\x1f{target}" for target in targets)]
        await self._collection.bulk_write(
            [UpdateOne({"_id": _id}, {"$set": {"at": now}}, upsert=True) for _id in ids],
            ordered=True,
            session=session,
        )
